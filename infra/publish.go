package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// What the central account publishes: StackSets deploy a template into
// other accounts, and CDK's asset publishing writes into the deploying
// account's bootstrap buckets only, which member accounts neither have
// nor may read. So the member stack uses a synthesizer without assets,
// and everything its template points at goes, under its content's hash,
// into the code bucket CODEBUCKETPREFIX-REGION of every region (the
// organization may read it: codebuckets.go). docs/operations.md has the
// steps.

// publishedPrefix is the code buckets' prefix of s3rekey's objects.
const publishedPrefix = "s3rekey/"

// zipEpoch is every zip entry's time: the same code gives the same zip,
// and so the same key, at every synth.
var zipEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// publishZip zips dir (its files, with their modes) into publishDir
// under a key naming the content, and returns the key.
func publishZip(publishDir, name, dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, path := range files {
		info, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, path) // path is under dir
		h := &zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Deflate, Modified: zipEpoch}
		h.SetMode(info.Mode().Perm())
		w, err := zw.CreateHeader(h)
		if err != nil {
			return "", err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if _, err := w.Write(data); err != nil {
			return "", err
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return publish(publishDir, name, ".zip", buf.Bytes())
}

// publish writes data into publishDir as publishedPrefix+name-HASH+ext
// and returns that key.
func publish(publishDir, name, ext string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	key := publishedPrefix + name + "-" + hex.EncodeToString(sum[:]) + ext
	path := filepath.Join(publishDir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return key, os.WriteFile(path, data, 0o644)
}

// MemberStackName is the member stack's id: its template in cdk.out, and
// the stack a pilot account can deploy directly.
const MemberStackName = "S3RekeyMember"

// memberSynthesizer makes a template without assets, and without the
// bootstrap-version check: member accounts are not CDK-bootstrapped.
func memberSynthesizer() awscdk.IStackSynthesizer {
	return awscdk.NewBootstraplessSynthesizer(&awscdk.BootstraplessSynthesizerProps{})
}

// PublishedMember is the member template as published: its key in the
// central region's code bucket, and the code keys it names by default.
type PublishedMember struct {
	TemplateKey string
	CodeKeys    map[string]string
	// Template is the template itself (for the tests and the size check).
	Template map[string]any
}

// publishMember synthesizes the member stack on its own (the organization
// stack needs its finished template before the app is synthesized) and
// publishes the template beside the code.
func publishMember(props S3RekeyStackProps) (*PublishedMember, error) {
	out, err := os.MkdirTemp("", "s3rekey-member-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out)})
	props.StackProps = awscdk.StackProps{Synthesizer: memberSynthesizer(), Description: jsii.String(memberDescription)}
	stack := NewS3RekeyStack(app, MemberStackName, &props)
	defer os.RemoveAll(stack.policyDir)
	app.Synth(nil)
	data, err := os.ReadFile(filepath.Join(out, MemberStackName+".template.json"))
	if err != nil {
		return nil, err
	}
	var tmpl map[string]any
	if err := json.Unmarshal(data, &tmpl); err != nil {
		return nil, fmt.Errorf("member template: %w", err)
	}
	key, err := publish(props.Member.PublishDir, "member", ".template.json", data)
	if err != nil {
		return nil, err
	}
	return &PublishedMember{TemplateKey: key, CodeKeys: stack.member.codeKeys, Template: tmpl}, nil
}

const memberDescription = "s3rekey member: every object of the account onto the right KMS key"
