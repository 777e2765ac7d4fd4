package apptest

import (
	"testing"

	"github.com/tenantry/tenantry/s3/s3test"
)

// S3Environ returns the application's S3 variables for a bucket of this
// test's own, emptied and deleted when the test ends, on the server named by
// TENANTRY_TEST_S3_ENDPOINT (with TENANTRY_TEST_S3_ACCESS_KEY and
// TENANTRY_TEST_S3_SECRET_KEY). Without that variable it returns nil and the
// caller decides whether to skip, with s3test.Require, or to run on local
// disk instead.
func S3Environ(t testing.TB) map[string]string {
	t.Helper()
	if !s3test.Available() {
		return nil
	}
	cfg := s3test.NewBucket(t)
	return map[string]string{
		"S3_ENDPOINT_URL":      cfg.Endpoint,
		"S3_PUBLIC_URL":        cfg.Endpoint,
		"S3_ACCESS_KEY_ID":     cfg.AccessKeyID,
		"S3_SECRET_ACCESS_KEY": cfg.SecretAccessKey,
		"S3_BUCKET":            cfg.Bucket,
		"S3_REGION":            cfg.Region,
	}
}
