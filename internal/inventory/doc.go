// Package inventory reads S3 Inventory reports: the manifest (checked
// against manifest.checksum), and the data files in CSV (gzip, no header,
// URL-encoded keys, columns from the manifest's fileSchema), Apache Parquet
// and Apache ORC (snake_case fields), through parquet-go and the ORC
// library. Each data file is downloaded to a temporary file while its MD5 is
// computed and compared with the manifest before a single row is read, so a
// corrupt or truncated file is an error, never half a job; rows then stream
// from disk, so memory stays bounded whatever the file size. Filter decides
// which rows become work.
package inventory
