package metatable

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
)

// SigningName is the SigV4 service name of the S3 Tables Iceberg REST
// endpoint (user guide, s3-tables-integrating-open-source).
const SigningName = "s3tables"

// MetadataConfigAPI reads a bucket's S3 Metadata configuration.
type MetadataConfigAPI interface {
	GetBucketMetadataConfiguration(ctx context.Context, in *s3.GetBucketMetadataConfigurationInput, optFns ...func(*s3.Options)) (*s3.GetBucketMetadataConfigurationOutput, error)
}

var _ MetadataConfigAPI = (*s3.Client)(nil)

// Location names a bucket's live inventory table.
type Location struct {
	TableBucketARN, Namespace, Table, TableARN string
	Status                                     string // ACTIVE, BACKFILLING, …
}

// ErrNoTable says the bucket has no live inventory table to read.
var ErrNoTable = errors.New("no S3 Metadata live inventory table")

// Find reads where a bucket's live inventory table is, naming owner (when
// set) as the bucket's expected owner. It returns an error
// wrapping ErrNoTable when the bucket has no metadata configuration, the
// inventory table is disabled, or it is not ACTIVE yet.
func Find(ctx context.Context, api MetadataConfigAPI, bucket, owner string) (Location, error) {
	out, err := api.GetBucketMetadataConfiguration(ctx, &s3.GetBucketMetadataConfigurationInput{Bucket: aws.String(bucket), ExpectedBucketOwner: bucketowner.Named(owner)})
	if err != nil {
		var re interface{ HTTPStatusCode() int }
		var ae smithy.APIError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound || errors.As(err, &ae) && strings.Contains(ae.ErrorCode(), "NotFound") {
			return Location{}, fmt.Errorf("s3://%s: %w (no metadata configuration)", bucket, ErrNoTable)
		}
		return Location{}, fmt.Errorf("get the metadata configuration of s3://%s: %w", bucket, err)
	}
	res := out.GetBucketMetadataConfigurationResult
	if res == nil || res.MetadataConfigurationResult == nil || res.MetadataConfigurationResult.DestinationResult == nil {
		return Location{}, fmt.Errorf("s3://%s: %w (empty metadata configuration)", bucket, ErrNoTable)
	}
	mc := res.MetadataConfigurationResult
	inv := mc.InventoryTableConfigurationResult
	if inv == nil || inv.ConfigurationState != "ENABLED" {
		return Location{}, fmt.Errorf("s3://%s: %w (the inventory table is disabled)", bucket, ErrNoTable)
	}
	loc := Location{
		TableBucketARN: aws.ToString(mc.DestinationResult.TableBucketArn), Namespace: aws.ToString(mc.DestinationResult.TableNamespace),
		Table: aws.ToString(inv.TableName), TableARN: aws.ToString(inv.TableArn), Status: aws.ToString(inv.TableStatus),
	}
	if loc.Status != "ACTIVE" {
		return loc, fmt.Errorf("s3://%s: %w (the inventory table is %s)", bucket, ErrNoTable, loc.Status)
	}
	if loc.Table == "" {
		loc.Table = "inventory"
	}
	return loc, nil
}

// Catalog is a client of the S3 Tables Iceberg REST endpoint.
type Catalog struct {
	// Endpoint is the catalog's URI: https://s3tables.REGION.amazonaws.com/iceberg,
	// or a local endpoint's /iceberg.
	Endpoint    string
	HTTP        aws.HTTPClient
	Credentials aws.CredentialsProvider
	Region      string
}

// NewCatalog is the catalog of cfg's region, or of cfg's endpoint override.
func NewCatalog(cfg aws.Config) *Catalog {
	endpoint := "https://s3tables." + cfg.Region + ".amazonaws.com/iceberg"
	if cfg.BaseEndpoint != nil {
		endpoint = strings.TrimRight(*cfg.BaseEndpoint, "/") + "/iceberg"
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Catalog{Endpoint: endpoint, HTTP: httpClient, Credentials: cfg.Credentials, Region: cfg.Region}
}

// emptyPayloadHash is the SHA-256 of an empty body.
var emptyPayloadHash = hex.EncodeToString(sha256.New().Sum(nil))

// get sends a signed GET and decodes its JSON answer into out.
func (c *Catalog) get(ctx context.Context, path string, query url.Values, out any) error {
	u := c.Endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("catalog request %s: %w", path, err)
	}
	if c.Credentials == nil {
		return errors.New("catalog: no AWS credentials")
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("catalog: credentials: %w", err)
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptyPayloadHash, SigningName, c.Region, time.Now()); err != nil {
		return fmt.Errorf("catalog: sign: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("catalog GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return fmt.Errorf("catalog GET %s: %w", path, err)
	}
	if len(body) > maxMetadataBytes {
		return fmt.Errorf("catalog GET %s: answer over %d bytes", path, maxMetadataBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message, Type string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("catalog GET %s: %s %s: %s", path, resp.Status, e.Error.Type, e.Error.Message)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("catalog GET %s: %w", path, err)
	}
	return nil
}

// maxMetadataBytes is S3 Tables' own bound on a table's metadata.json
// (50 MB, s3-tables-integrating-open-source, "Considerations and limitations").
const maxMetadataBytes = 50 << 20

// LoadTable loads a table's metadata (Iceberg REST loadTable). The
// {prefix} is the URL-encoded table bucket ARN unless getConfig says
// otherwise.
func (c *Catalog) LoadTable(ctx context.Context, loc Location) (*TableMetadata, string, error) {
	var conf struct {
		Overrides map[string]string `json:"overrides"`
		Defaults  map[string]string `json:"defaults"`
	}
	if err := c.get(ctx, "/v1/config", url.Values{"warehouse": {loc.TableBucketARN}}, &conf); err != nil {
		return nil, "", err
	}
	prefix := url.PathEscape(loc.TableBucketARN)
	if p := conf.Overrides["prefix"]; p != "" {
		prefix = p
	}
	var res struct {
		MetadataLocation string          `json:"metadata-location"`
		Metadata         json.RawMessage `json:"metadata"`
	}
	path := "/v1/" + prefix + "/namespaces/" + url.PathEscape(loc.Namespace) + "/tables/" + url.PathEscape(loc.Table)
	if err := c.get(ctx, path, nil, &res); err != nil {
		return nil, "", err
	}
	md, err := ParseMetadata(res.Metadata)
	if err != nil {
		return nil, "", fmt.Errorf("table %s.%s: %w", loc.Namespace, loc.Table, err)
	}
	return md, res.MetadataLocation, nil
}
