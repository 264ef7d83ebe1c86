package cost

import "math"

// List prices, us-east-1, in dollars.
const (
	S3PutPerRequest      = 0.005 / 1000  // PUT, COPY, POST, LIST; UpdateObjectEncryption is PUT-class
	S3GetPerRequest      = 0.0004 / 1000 // GET, HEAD and the rest
	SQSPerRequest        = 0.40 / 1e6    // per 64 KiB chunk
	LambdaPerGBSecond    = 0.0000133334  // arm64
	LambdaPerInvocation  = 0.20 / 1e6
	KMSPerRequest        = 0.03 / 10000
	BatchOpsPerJob       = 0.25
	BatchOpsPerObject    = 1.00 / 1e6
	S3StandardPerGBMonth = 0.023 // first 50 TB; other storage classes cost less
	// DynamoDB on-demand request units (a write unit is 1 KB written, a
	// read unit 4 KB read strongly, or twice that eventually).
	DynamoDBPerWriteUnit  = 0.625 / 1e6
	DynamoDBPerReadUnit   = 0.125 / 1e6
	SQSChunkBytes         = 64 << 10
	DefaultLambdaMemoryMB = 1024
)

// Usage is what a run consumed.
type Usage struct {
	Objects        int64   // objects the job covered
	UOE            int64   // UpdateObjectEncryption requests
	S3Get          int64   // HEAD, GET (inventory files), other GET-class requests
	S3Put          int64   // LIST and other PUT-class requests, UOE excluded
	SQS            int64   // SQS requests, in 64 KiB chunks
	KMS            int64   // KMS requests (S3's on the caller's behalf included)
	LambdaSeconds  float64 // function time
	LambdaMemoryMB int
	LambdaInvokes  int64
	BatchOpsJobs   int64 // jobs S3 Batch Operations would need (default 1)
	// Job records and reports: DynamoDB request units, and the report
	// files written (PUT-class).
	JobWriteUnits, JobReadUnits float64
	ReportPuts                  int64
}

// Breakdown is a priced Usage.
type Breakdown struct {
	UOE, S3Requests, SQS, Lambda, KMS float64
	// Jobs is what job records and completion reports cost.
	Jobs float64
	// Overhead is what s3rekey adds to the UOE requests every tool pays:
	// S3 reads and lists, SQS, Lambda, and job records and reports. KMS is shown apart: S3 makes
	// those calls for any tool, and S3 Bucket Keys cut them.
	Overhead float64
	Total    float64
	// BatchOps is S3 Batch Operations' fee for the same objects
	// (per job and per object), the counterpart of Overhead.
	BatchOps float64
}

// Price prices a usage.
func Price(u Usage) Breakdown {
	mem := u.LambdaMemoryMB
	if mem <= 0 {
		mem = DefaultLambdaMemoryMB
	}
	jobs := u.BatchOpsJobs
	if jobs <= 0 {
		jobs = 1
	}
	b := Breakdown{
		UOE:        float64(u.UOE) * S3PutPerRequest,
		S3Requests: float64(u.S3Get)*S3GetPerRequest + float64(u.S3Put)*S3PutPerRequest,
		SQS:        float64(u.SQS) * SQSPerRequest,
		Lambda:     u.LambdaSeconds*float64(mem)/1024*LambdaPerGBSecond + float64(u.LambdaInvokes)*LambdaPerInvocation,
		KMS:        float64(u.KMS) * KMSPerRequest,
		Jobs:       u.JobWriteUnits*DynamoDBPerWriteUnit + u.JobReadUnits*DynamoDBPerReadUnit + float64(u.ReportPuts)*S3PutPerRequest,
		BatchOps:   float64(jobs)*BatchOpsPerJob + float64(u.Objects)*BatchOpsPerObject,
	}
	b.Overhead = b.S3Requests + b.SQS + b.Lambda + b.Jobs
	b.Total = b.UOE + b.Overhead + b.KMS
	return b
}

// PerMillion scales a dollar amount for n objects to a million objects.
func PerMillion(dollars float64, n int64) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return dollars / float64(n) * 1e6
}

// SQSChunks is the number of billed requests of one message of size bytes.
func SQSChunks(size int) int64 {
	return int64(max(1, (size+SQSChunkBytes-1)/SQSChunkBytes))
}

// StandardStoragePerMonth is what bytes cost a month in S3 Standard: the
// most the old versions copies in place keep can cost.
func StandardStoragePerMonth(bytes int64) float64 {
	return float64(bytes) / (1 << 30) * S3StandardPerGBMonth
}
