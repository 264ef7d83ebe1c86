package permissions

import (
	"slices"
	"strings"
)

// EffectDeny makes a statement an explicit Deny.
const EffectDeny = "Deny"

// DenyExcludedSid names the encrypt role's Deny on excluded prefixes.
const DenyExcludedSid = "DenyExcludedPrefixes"

// objectStatements are the encrypt role's statements whose actions act on
// managed buckets' objects: what the Deny on excluded prefixes refuses.
var objectStatements = []string{"ReadObjectState", "UpdateObjectEncryption", "CopyInPlace"}

// denyExcluded is the explicit Deny of every object action the statements
// grant on managed objects, on the excluded prefixes of exactly named
// buckets (ExcludedObjects). Bucket-level actions (s3:ListBucket, which
// HeadObject's 404 and listings need) take bucket ARNs and are never
// refused by it. A pattern that overlaps the report location is left
// out, so that report parts are always written.
func (r Resources) denyExcluded(stmts []Statement) (Statement, bool) {
	var actions []string
	for _, st := range stmts {
		if slices.Contains(objectStatements, st.Sid) {
			for _, a := range st.Actions {
				if !slices.Contains(actions, a) {
					actions = append(actions, a)
				}
			}
		}
	}
	report := strings.TrimSuffix(r.ReportObjectsARN, "*")
	var resources []string
	for _, arn := range r.arns(r.ExcludedObjects, "") {
		literal := strings.TrimSuffix(arn, "*")
		if report != "" && (strings.HasPrefix(report, literal) || strings.HasPrefix(literal, report)) {
			continue
		}
		resources = append(resources, arn)
	}
	if len(actions) == 0 || len(resources) == 0 {
		return Statement{}, false
	}
	return Statement{Sid: DenyExcludedSid, Effect: EffectDeny, Actions: actions, Resources: resources}, true
}
