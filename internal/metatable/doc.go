// Package metatable reads S3 Metadata live inventory tables: it finds a
// bucket's table through GetBucketMetadataConfiguration, loads it from the
// S3 Tables Iceberg REST endpoint (SigV4, signing name s3tables), and
// reads its current snapshot by the Iceberg table spec: the metadata JSON,
// the manifest list and manifests (Avro object container files), and the
// Parquet data files, read with the S3 API from the table's location.
//
// What is read, and what is refused rather than misread: format versions
// 1 and 2; data files in Parquet (columns by name, as the S3 user guide's
// metadata-tables-inventory-schema names them); manifests of data files.
// A snapshot with delete files (positional or equality deletes, merge-on-
// read) is refused with an error, as this reader does not apply them;
// Avro codecs other than null, deflate and snappy are refused. Partition
// values and column statistics are not used: every data file is read.
package metatable
