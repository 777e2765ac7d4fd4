// Package s3test gives each test a bucket of its own on the S3-compatible
// server named by TENANTRY_TEST_S3_ENDPOINT (versitygw in CI), so that tests
// of the S3 store and of the application in production shape run in
// parallel without seeing one another's objects. Without that variable they
// are skipped, with a message saying how to enable them.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantry/tenantry/s3"
)

// The variables naming the test server and its root credentials.
const (
	EndpointEnv  = "TENANTRY_TEST_S3_ENDPOINT"
	AccessKeyEnv = "TENANTRY_TEST_S3_ACCESS_KEY"
	SecretKeyEnv = "TENANTRY_TEST_S3_SECRET_KEY"
)

// Region is the region test buckets are created in.
const Region = "us-east-1"

// Available reports whether a test server is configured.
func Available() bool { return os.Getenv(EndpointEnv) != "" }

// Require skips t when no test server is configured.
func Require(t testing.TB) {
	t.Helper()
	if !Available() {
		t.Skipf("S3 suite skipped: set %s (for example http://127.0.0.1:7070), %s and %s to an S3-compatible server such as versitygw to run it",
			EndpointEnv, AccessKeyEnv, SecretKeyEnv)
	}
}

// Client returns an SDK client for the test server with its root
// credentials, for tests that look at a bucket behind a store's back.
func Client(t testing.TB) *awss3.Client {
	t.Helper()
	Require(t)
	return awss3.New(awss3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(os.Getenv(EndpointEnv)),
		UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(
			os.Getenv(AccessKeyEnv), os.Getenv(SecretKeyEnv), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// NewBucket creates an empty bucket for t, removed with everything in it
// when t ends, and returns a store configuration for it. It skips t when no
// test server is configured.
func NewBucket(t testing.TB) s3.Config {
	t.Helper()
	client := Client(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	bucket := "tenantry-test-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("create test bucket: %v", err)
	}
	t.Cleanup(func() { removeBucket(t, client, bucket) })
	return s3.Config{
		Endpoint:        os.Getenv(EndpointEnv),
		Region:          Region,
		Bucket:          bucket,
		AccessKeyID:     os.Getenv(AccessKeyEnv),
		SecretAccessKey: os.Getenv(SecretKeyEnv),
	}
}

// removeBucket empties and deletes a test bucket. Failures are logged, not
// fatal: the test's verdict is already in.
func removeBucket(t testing.TB, client *awss3.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	uploads, err := client.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &bucket})
	if err == nil {
		for _, u := range uploads.Uploads {
			_, _ = client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
		}
	}
	pages := awss3.NewListObjectsV2Paginator(client, &awss3.ListObjectsV2Input{Bucket: &bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Logf("emptying test bucket %s: %v", bucket, err)
			return
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
				t.Logf("emptying test bucket %s: %v", bucket, err)
			}
		}
	}
	if _, err := client.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Logf("deleting test bucket %s: %v", bucket, err)
	}
}
