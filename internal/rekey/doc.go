// Package rekey brings one object version onto its policy's KMS key: it
// reads the object's state (HeadObject, or the facts an inventory row
// proved), decides with a pure decision table, applies
// UpdateObjectEncryption, and classifies every answer into exactly one
// terminal Outcome of s3rekey's vocabulary. It never reads object data.
package rekey
