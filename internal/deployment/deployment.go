// Package deployment is what one account's s3rekey deployment publishes
// about itself, so that an organization view can find its jobs table and
// queues without knowing the names CloudFormation generated.
//
// The member stack writes a Record, as JSON, to an SSM String parameter
// (DefaultParameterName unless the organization config names another);
// the organization's read-only role in each account may read it. The CLI's
// --org views read it after assuming that role.
package deployment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultParameterName is the SSM parameter a member deployment publishes
// its Record under.
const DefaultParameterName = "/s3rekey/deployment"

// DefaultReaderRoleName is the base name of the role every member stack
// creates for the organization view (read-only: the Record, the jobs
// table, the queues' attributes), assumable only from the organization's
// view account. The role is named for its region (ReaderRoleName).
const DefaultReaderRoleName = "s3rekey-org-reader"

// ReaderRoleName is the reader role of the deployment in region. IAM roles
// are global to an account, while a StackSet deploys the member stack once
// in every target region of it: each region's stack creates its own reader
// role, for its own region's resources, so that no two stacks of one
// account create the same role.
func ReaderRoleName(base, region string) string { return base + "-" + region }

// Version is the Record layout this code writes and reads.
const Version = 1

// Record is one deployment's resources.
type Record struct {
	Version         int    `json:"version"`
	Account         string `json:"account"`
	Region          string `json:"region"`
	JobsTable       string `json:"jobsTable"`
	WorkQueueURL    string `json:"workQueueUrl"`
	WorkDLQURL      string `json:"workDlqUrl"`
	ControlQueueURL string `json:"controlQueueUrl"`
	ControlDLQURL   string `json:"controlDlqUrl"`
	// UploadsQueueURL and UploadsDLQURL are the uploads queue (the stack's
	// output UploadsQueueUrl) and its DLQ (UploadsDeadLetterQueueUrl):
	// empty for deployments whose uploads share the work queue.
	UploadsQueueURL string `json:"uploadsQueueUrl,omitempty"`
	UploadsDLQURL   string `json:"uploadsDlqUrl,omitempty"`
	// ReportLocation is s3://bucket/prefix of the completion reports.
	ReportLocation string `json:"reportLocation,omitempty"`
}

// Parse decodes a Record and checks that it names what a view needs.
func Parse(data []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("deployment record: %w", err)
	}
	if r.Version != Version {
		return Record{}, fmt.Errorf("deployment record: version %d, this s3rekey reads version %d", r.Version, Version)
	}
	var missing []string
	for name, v := range map[string]string{"account": r.Account, "region": r.Region, "jobsTable": r.JobsTable,
		"workQueueUrl": r.WorkQueueURL, "controlQueueUrl": r.ControlQueueURL} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if (r.UploadsQueueURL == "") != (r.UploadsDLQURL == "") {
		missing = append(missing, "uploadsQueueUrl and uploadsDlqUrl together")
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return Record{}, errors.New("deployment record: missing " + strings.Join(missing, ", "))
	}
	return r, nil
}
