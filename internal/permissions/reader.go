package permissions

// View are the resources of a member deployment the organization view
// reads, beside those of Resources.
type View struct {
	// DeploymentParameterARN is the SSM parameter holding the deployment
	// record (internal/deployment).
	DeploymentParameterARN string
	// QueueARNs are the stack's queues, whose depths status shows.
	QueueARNs []string
	// InventoryKeyARN encrypts the inventory bucket the stack created;
	// empty for a configured bucket (its own key policy decides).
	InventoryKeyARN string
}

// Reader is the organization view's read-only role in a member account:
// what s3rekey jobs, status and estate call there, and nothing that
// writes. The views read job records and pauses with Query only
// (jobs.Store.List and Get, encrypt.PauseTable.Pauses); status reads the
// queues' attributes; estate lists the account's buckets and reads each
// one's settings (every bucket of the account, governed or not) and the
// latest inventory manifest.
func Reader(r Resources, v View) []Statement {
	out := []Statement{
		{Sid: "ReadDeploymentRecord", Actions: []string{"ssm:GetParameter"}, Resources: []string{v.DeploymentParameterARN}},
		{Sid: "ReadJobs", Actions: []string{"dynamodb:Query"}, Resources: []string{r.JobsTableARN}},
		{Sid: "QueueDepths", Actions: []string{"sqs:GetQueueAttributes"}, Resources: append([]string(nil), v.QueueARNs...)},
		// ListBuckets needs s3:ListAllMyBuckets, which takes no bucket ARN.
		{Sid: "ListAccountBuckets", Actions: []string{"s3:ListAllMyBuckets"}, Resources: []string{"*"}},
		// GetBucketTagging, GetBucketEncryption,
		// GetBucketNotificationConfiguration,
		// GetBucketInventoryConfiguration and GetBucketReplication.
		{Sid: "ReadBucketSettings", Actions: []string{"s3:GetBucketTagging", "s3:GetEncryptionConfiguration", "s3:GetBucketNotification",
			"s3:GetInventoryConfiguration", "s3:GetReplicationConfiguration"},
			Resources: []string{"arn:" + r.Partition + ":s3:::*"}, Condition: r.inAccount(true)},
		{Sid: "ListInventory", Actions: []string{"s3:ListBucket"}, Resources: []string{r.InventoryBucketARN}},
		{Sid: "ReadInventory", Actions: []string{"s3:GetObject"}, Resources: []string{r.InventoryBucketARN + "/*"}},
	}
	if v.InventoryKeyARN != "" {
		out = append(out, Statement{Sid: "InventoryKey", Actions: []string{"kms:Decrypt"}, Resources: []string{v.InventoryKeyARN}, Condition: r.viaS3()})
	}
	return out
}
