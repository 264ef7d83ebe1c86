package main

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/s3rekey/s3rekey/internal/deployment"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// OrganizationConfig deploys s3rekey to every account of chosen
// organizational units (OUs) and regions: the member stack as a
// service-managed StackSet from the central account, reporting into one
// central report bucket. Absent, the app deploys one account as before.
type OrganizationConfig struct {
	// OrganizationID (o-…) is what aws:PrincipalOrgID must equal for a
	// member to write a report, read the code, or be assumed into.
	OrganizationID string `json:"organizationId"`
	// CentralAccount is the account of the organization stack: the
	// management account or a delegated StackSets administrator. It owns
	// the central report bucket, its key and the code buckets, and its
	// view role (ViewRoleName) may assume every member's reader role.
	CentralAccount string `json:"centralAccount"`
	// CentralRegion is the organization stack's region, where the central
	// report bucket and its key live.
	CentralRegion string `json:"centralRegion"`
	// ViewRoleName is the role of the central account the organization
	// view runs under (s3rekey jobs --org and the like).
	ViewRoleName string `json:"viewRoleName"`
	// Targets are where the StackSet deploys: every account of these OUs
	// (a root ID, r-…, for the whole organization), in these regions.
	Targets OrganizationTargets `json:"targets"`
	// CallAs is "SELF" (the default: the management account deploys) or
	// "DELEGATED_ADMIN" (a delegated administrator does).
	CallAs string `json:"callAs,omitempty"`
	// RetainStacksOnAccountRemoval keeps a member's stack (and the record
	// of its work) when its account leaves the target OUs (default true).
	RetainStacksOnAccountRemoval *bool `json:"retainStacksOnAccountRemoval,omitempty"`
	// CodeBucketPrefix names the central account's code buckets, one per
	// region: PREFIX-REGION holds the functions' and the policy's zips
	// (StackSets cannot publish CDK assets into member accounts).
	CodeBucketPrefix string `json:"codeBucketPrefix"`
	// ReportBucketName is the central report bucket (default
	// CodeBucketPrefix-reports).
	ReportBucketName string `json:"reportBucketName,omitempty"`
	// ReaderRoleName and ParameterName are the member's fixed names the
	// view finds in every account (defaults deployment.DefaultReaderRoleName
	// and deployment.DefaultParameterName).
	ReaderRoleName string `json:"readerRoleName,omitempty"`
	ParameterName  string `json:"parameterName,omitempty"`
	// Accounts are per-account overrides, by account ID.
	Accounts map[string]AccountOverride `json:"accounts,omitempty"`
	// FailureTolerancePercentage and MaxConcurrentPercentage pace a
	// StackSet operation per region (defaults 0 and 25: the first failure
	// stops the rollout, a quarter of the accounts at a time).
	FailureTolerancePercentage *int `json:"failureTolerancePercentage,omitempty"`
	MaxConcurrentPercentage    int  `json:"maxConcurrentPercentage,omitempty"`
}

// OrganizationTargets are the StackSet's deployment targets.
type OrganizationTargets struct {
	OrganizationalUnitIDs []string `json:"organizationalUnitIds"`
	Regions               []string `json:"regions"`
}

// AccountOverride is what one account does differently.
type AccountOverride struct {
	// KMSKeyArn replaces every target key of the policy in this account:
	// an alias (alias/NAME, resolved in the account and region the member
	// runs in) or a key ARN of this very account (UpdateObjectEncryption
	// takes only keys of the bucket owner's account).
	KMSKeyArn string `json:"kmsKeyArn"`
}

var (
	organizationID = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	// An OU ID, or a root ID (the whole organization).
	targetOU   = regexp.MustCompile(`^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$`)
	regionName = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]+$`)
	// IAM role names: up to 64 of these characters.
	roleName = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	// Bucket names are at most 63 characters; the longest region name
	// (ap-southeast-5, 14) and the dash leave 48 for the prefix.
	bucketPrefix = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$`)
	bucketName   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	// SSM parameter names in a hierarchy start with a slash.
	parameterName = regexp.MustCompile(`^(/[\w.-]+)+$`)
)

// maxAccountAliases bounds the distinct aliases accounts override their
// keys with: each is a value of the encrypt role's kms:ResourceAliases
// condition, which must stay within IAM's policy size. Hundreds of
// accounts name one alias each creates (a naming rule) instead.
const maxAccountAliases = permissions.MaxListed

// validate fills the defaults and checks every field, naming it.
func (o *OrganizationConfig) validate(c *Config) error {
	const at = "organization."
	if !organizationID.MatchString(o.OrganizationID) {
		return fmt.Errorf(at+"organizationId: %q is not an organization ID (o-…)", o.OrganizationID)
	}
	if !accountID.MatchString(o.CentralAccount) {
		return fmt.Errorf(at+"centralAccount: %q is not a 12-digit account ID", o.CentralAccount)
	}
	if !regionName.MatchString(o.CentralRegion) {
		return fmt.Errorf(at+"centralRegion: %q is not a region name", o.CentralRegion)
	}
	if !roleName.MatchString(o.ViewRoleName) {
		return fmt.Errorf(at+"viewRoleName: %q is not an IAM role name", o.ViewRoleName)
	}
	if len(o.Targets.OrganizationalUnitIDs) == 0 {
		return fmt.Errorf(at + "targets.organizationalUnitIds: name at least one OU (or the root, r-…, for the whole organization)")
	}
	for i, ou := range o.Targets.OrganizationalUnitIDs {
		if !targetOU.MatchString(ou) {
			return fmt.Errorf(at+"targets.organizationalUnitIds[%d]: %q is not an OU ID (ou-…) or root ID (r-…)", i, ou)
		}
	}
	if len(o.Targets.Regions) == 0 {
		return fmt.Errorf(at + "targets.regions: name at least one region")
	}
	for i, r := range o.Targets.Regions {
		if !regionName.MatchString(r) {
			return fmt.Errorf(at+"targets.regions[%d]: %q is not a region name", i, r)
		}
		if slices.Index(o.Targets.Regions, r) != i {
			return fmt.Errorf(at+"targets.regions[%d]: %q is listed twice", i, r)
		}
	}
	if o.CallAs == "" {
		o.CallAs = "SELF"
	}
	if o.CallAs != "SELF" && o.CallAs != "DELEGATED_ADMIN" {
		return fmt.Errorf(at+"callAs: %q must be SELF or DELEGATED_ADMIN", o.CallAs)
	}
	if o.RetainStacksOnAccountRemoval == nil {
		retain := true
		o.RetainStacksOnAccountRemoval = &retain
	}
	if !bucketPrefix.MatchString(o.CodeBucketPrefix) {
		return fmt.Errorf(at+"codeBucketPrefix: %q must be 3 to 48 lowercase letters, digits and dashes (buckets PREFIX-REGION)", o.CodeBucketPrefix)
	}
	if o.ReportBucketName == "" {
		o.ReportBucketName = o.CodeBucketPrefix + "-reports"
	}
	if !bucketName.MatchString(o.ReportBucketName) {
		return fmt.Errorf(at+"reportBucketName: %q is not a bucket name", o.ReportBucketName)
	}
	if o.ReaderRoleName == "" {
		o.ReaderRoleName = deployment.DefaultReaderRoleName
	}
	if !roleName.MatchString(o.ReaderRoleName) {
		return fmt.Errorf(at+"readerRoleName: %q is not an IAM role name", o.ReaderRoleName)
	}
	// Each region's member stack names its reader for its region
	// (deployment.ReaderRoleName); IAM role names are at most 64 characters.
	for _, region := range o.Targets.Regions {
		if name := deployment.ReaderRoleName(o.ReaderRoleName, region); !roleName.MatchString(name) {
			return fmt.Errorf(at+"readerRoleName: %q with the region, %q, is longer than IAM's 64 characters", o.ReaderRoleName, name)
		}
	}
	if o.ParameterName == "" {
		o.ParameterName = deployment.DefaultParameterName
	}
	if !parameterName.MatchString(o.ParameterName) {
		return fmt.Errorf(at+"parameterName: %q is not an SSM parameter name (/a/b)", o.ParameterName)
	}
	if o.FailureTolerancePercentage == nil {
		zero := 0
		o.FailureTolerancePercentage = &zero
	}
	if o.MaxConcurrentPercentage == 0 {
		o.MaxConcurrentPercentage = 25
	}
	if p := *o.FailureTolerancePercentage; p < 0 || p > 100 {
		return fmt.Errorf(at+"failureTolerancePercentage: %d must be from 0 to 100", p)
	}
	if p := o.MaxConcurrentPercentage; p < 1 || p > 100 {
		return fmt.Errorf(at+"maxConcurrentPercentage: %d must be from 1 to 100", p)
	}
	if err := o.validateAccounts(); err != nil {
		return err
	}
	r := c.Jobs.Reports
	if r.Bucket != "" || r.ExpectedOwner != "" || r.KMSKeyArn != CreateKey || r.Prefix != defaultReportPrefix {
		return fmt.Errorf("jobs.reports: leave bucket, prefix, expectedOwner and kmsKeyArn out with an organization: members report into the central bucket (%s), under reports/ACCOUNT/REGION/ and its key", o.ReportBucketName)
	}
	if len(c.CreatedKeys) > 0 {
		return fmt.Errorf("%s.kmsKeyArn: %q makes a key in each member account from the StackSet; with an organization, name the target key by an alias each account creates, or per account in organization.accounts", c.CreatedKeys[0].Where, CreateKey)
	}
	return nil
}

func (o *OrganizationConfig) validateAccounts() error {
	aliases := map[string]bool{}
	for _, id := range sortedAccountIDs(o.Accounts) {
		at := "organization.accounts." + id
		if !accountID.MatchString(id) {
			return fmt.Errorf("%s: not a 12-digit account ID", at)
		}
		key := o.Accounts[id].KMSKeyArn
		switch {
		case strings.HasPrefix(key, "alias/") && len(key) > len("alias/"):
			aliases[key] = true
		case strings.HasPrefix(key, "arn:aws") && strings.Contains(key, ":key/"):
			// arn:PARTITION:kms:REGION:ACCOUNT:key/ID
			parts := strings.Split(key, ":")
			if len(parts) < 6 || parts[4] != id {
				return fmt.Errorf("%s.kmsKeyArn: %q is not a key of account %s: UpdateObjectEncryption takes only keys of the bucket owner's account", at, key, id)
			}
			// A key is of one region, and a bucket is re-keyed onto a key of
			// its own region: the account's other regions would have none.
			if len(o.Targets.Regions) != 1 || parts[3] != o.Targets.Regions[0] {
				return fmt.Errorf("%s.kmsKeyArn: %q is a key of %s, and the account is deployed in %s: name the account's key by an alias it creates in every region", at, key, parts[3], strings.Join(o.Targets.Regions, ", "))
			}
		default:
			return fmt.Errorf("%s.kmsKeyArn: %q is not a key ARN or an alias (alias/NAME)", at, key)
		}
	}
	if len(aliases) > maxAccountAliases {
		return fmt.Errorf("organization.accounts: %d distinct aliases, at most %d (name one alias every account creates, in the policy, instead)", len(aliases), maxAccountAliases)
	}
	return nil
}

func sortedAccountIDs(m map[string]AccountOverride) []string {
	return slices.Sorted(maps.Keys(m))
}

// accountPolicies are the policies of the accounts with an override, by
// account ID: the policy with every target key replaced by the account's.
func (o *OrganizationConfig) accountPolicies(c *Config) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, id := range sortedAccountIDs(o.Accounts) {
		data := c.PolicyJSON
		seen := map[string]bool{}
		for _, t := range c.Policy.Targets() {
			if seen[t.KMSKeyARN] || t.KMSKeyARN == "" {
				continue
			}
			seen[t.KMSKeyARN] = true
			var err error
			if data, _, err = policy.ReplaceKeys(data, t.KMSKeyARN, func(string) string { return o.Accounts[id].KMSKeyArn }); err != nil {
				return nil, fmt.Errorf("organization.accounts.%s: %w", id, err)
			}
		}
		if _, err := policy.Parse(data); err != nil {
			return nil, fmt.Errorf("organization.accounts.%s: %w", id, err)
		}
		out[id] = data
	}
	return out, nil
}

// accountKeys are the override keys, split into key ARNs and aliases, for
// the encrypt role's grants.
func (o *OrganizationConfig) accountKeys() (arns, aliases []string) {
	for _, id := range sortedAccountIDs(o.Accounts) {
		k := o.Accounts[id].KMSKeyArn
		list := &arns
		if strings.HasPrefix(k, "alias/") {
			list = &aliases
		}
		if !slices.Contains(*list, k) {
			*list = append(*list, k)
		}
	}
	return arns, aliases
}
