package emulator_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// The emulator writes S3 Inventory reports as storage-inventory.md and
// storage-inventory-location.md describe them, not as s3rekey reads them:
// every CSV field quoted, keys URL-encoded, the null version's VersionId
// empty, legal hold On/Off, booleans true/false, a manifest, its checksum
// and the Hive symlink.txt.
func TestInventoryReportFollowsTheDocumentedFormat(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "src", true) // Object Lock: versioned from the start
	e.Bucket(t, "plain", false)
	e.Bucket(t, "inv", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("plain"), Key: aws.String("before versioning.txt")}, "x")
	if _, err := e.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("plain"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("plain"), Key: aws.String("before versioning.txt")}, "y")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("held+1.txt"), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn}, "x")

	get := func(key string) []byte {
		out, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("inv"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	csvLines := func(source string) (lines []string, manifest map[string]any) {
		key, err := e.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: source, DestinationBucket: "inv", Format: "CSV", Prefix: "p"})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(get(key), &manifest); err != nil {
			t.Fatal(err)
		}
		if sum := string(get(strings.TrimSuffix(key, "manifest.json") + "manifest.checksum")); len(sum) != 32 {
			t.Errorf("manifest.checksum %q is not an MD5", sum)
		}
		file := manifest["files"].([]any)[0].(map[string]any)["key"].(string)
		gz, err := gzip.NewReader(bytes.NewReader(get(file)))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(gz)
		return strings.Split(strings.TrimSpace(string(data)), "\n"), manifest
	}

	lines, manifest := csvLines("plain")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], `"plain","before+versioning.txt","","false","false",`) {
		t.Errorf("the null version is not reported with an empty VersionId:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `"`) || !strings.HasSuffix(l, `"`) || strings.Count(l, `","`) != 13 {
			t.Errorf("line %s: want 14 quoted fields", l)
		}
	}
	if schema := manifest["fileSchema"].(string); !strings.HasPrefix(schema, "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size") {
		t.Errorf("fileSchema %q", schema)
	}
	lines, _ = csvLines("src")
	if len(lines) != 1 || !strings.Contains(lines[0], `"held%2B1.txt"`) || !strings.Contains(lines[0], `"On","DISABLED"`) || !strings.Contains(lines[0], `"true","false"`) {
		t.Errorf("legal hold row %s: want the key URL-encoded, true/false and On", lines)
	}
	list, err := e.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("inv"), Prefix: aws.String("p/src/s3rekey/hive/dt=")})
	if err != nil || len(list.Contents) != 1 || !strings.HasSuffix(aws.ToString(list.Contents[0].Key), "/symlink.txt") {
		t.Fatalf("no Hive symlink.txt: %+v %v", list.Contents, err)
	}
	if link := string(get(aws.ToString(list.Contents[0].Key))); !strings.HasPrefix(link, "s3://inv/p/src/s3rekey/data/") {
		t.Errorf("symlink.txt %q does not list the data file", link)
	}
}
