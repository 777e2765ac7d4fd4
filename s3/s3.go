// Package s3 stores blobs in a bucket of S3-compatible object storage, the
// production shape's blob store. It speaks path-style requests to any
// endpoint (AWS, versitygw, MinIO, Ceph...), streams uploads in multipart
// parts of bounded size, and hands out presigned download URLs signed for the
// host clients reach, which may differ from the one the service uses.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/tenantry/tenantry/blob"
)

var _ blob.Store = (*BlobStore)(nil)

// Limits S3 puts on multipart uploads and copies.
const (
	// DefaultPartSize is the part size used when Config.PartSize is zero:
	// the memory one upload holds, and 80 GiB of object at 10,000 parts.
	DefaultPartSize = 8 << 20
	// MinPartSize is the smallest part S3 accepts, but for the last.
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part S3 accepts.
	MaxPartSize = 5 << 30
	maxParts    = 10000
	// maxCopySize is the largest object one CopyObject may copy; Promote
	// copies larger ones in parts.
	maxCopySize = 5 << 30
	// copyPartSize keeps a multipart copy of the largest object S3 allows
	// (5 TiB) within 10,000 parts.
	copyPartSize = 1 << 30
	// MaxPresignTTL is the longest validity SigV4 allows a presigned URL.
	MaxPresignTTL = 7 * 24 * time.Hour
	// cleanupTimeout bounds the best-effort deletes and aborts run after a
	// failed or cancelled upload, on a context the caller's cancellation
	// does not reach.
	cleanupTimeout = 30 * time.Second
)

// Config locates the bucket and says how to reach it. Its String method
// leaves the secret out, so a Config may be logged.
type Config struct {
	// Endpoint is the URL the service sends requests to, for example
	// http://127.0.0.1:7070; empty means AWS itself.
	Endpoint string
	// PublicURL is the endpoint as clients reach it, used to sign
	// presigned URLs; empty means Endpoint.
	PublicURL string
	// Region defaults to us-east-1.
	Region string
	Bucket string
	// AccessKeyID and SecretAccessKey are static credentials; when both
	// are empty, the AWS default chain (environment, instance role...) is
	// used instead.
	AccessKeyID     string
	SecretAccessKey string
	// PartSize is the multipart part size, between MinPartSize and
	// MaxPartSize; zero means DefaultPartSize. One upload holds one part
	// in memory.
	PartSize int64
}

// String describes the configuration without its secret.
func (c Config) String() string {
	secret := ""
	if c.SecretAccessKey != "" {
		secret = "[redacted]"
	}
	return fmt.Sprintf("s3.Config{Endpoint:%q PublicURL:%q Region:%q Bucket:%q AccessKeyID:%q SecretAccessKey:%q PartSize:%d}",
		redactURL(c.Endpoint), redactURL(c.PublicURL), c.Region, c.Bucket, c.AccessKeyID, secret, c.PartSize)
}

// GoString is String, so that %#v does not print the secret either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", redactURL(c.Endpoint)),
		slog.String("public_url", redactURL(c.PublicURL)),
		slog.String("region", c.Region),
		slog.String("bucket", c.Bucket),
		slog.String("access_key_id", c.AccessKeyID),
	)
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// BlobStore is a blob.Store in one S3 bucket. It is safe for concurrent use.
type BlobStore struct {
	client  *awss3.Client
	presign *awss3.PresignClient
	bucket  string

	partSize int64
	// parts recycles part buffers between uploads, so that a busy server
	// does not allocate PartSize bytes per upload.
	parts sync.Pool

	// Multipart copy thresholds, variables only so that tests can reach
	// the multipart path with small objects.
	maxCopySize, copyPartSize int64
}

// NewBlobStore returns the store for cfg. It does not contact the endpoint:
// Ping does.
func NewBlobStore(ctx context.Context, cfg Config) (*BlobStore, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: bucket name required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	switch {
	case cfg.PartSize == 0:
		cfg.PartSize = DefaultPartSize
	case cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize:
		return nil, fmt.Errorf("s3: part size %d outside [%d, %d]", cfg.PartSize, MinPartSize, MaxPartSize)
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("s3: access key id and secret access key must be set together")
	}
	for _, u := range []string{cfg.Endpoint, cfg.PublicURL} {
		if err := checkEndpoint(u); err != nil {
			return nil, err
		}
	}

	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		// The SDK's default flexible checksums are not implemented by
		// every S3-compatible server; SigV4 already covers the payload.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	client := awss3.NewFromConfig(awsCfg, clientOptions(cfg.Endpoint))
	// The signature covers the host, so URLs for clients are signed by a
	// client addressing the public host: rewriting a signed URL would
	// invalidate it.
	signer := client
	if cfg.PublicURL != "" && cfg.PublicURL != cfg.Endpoint {
		signer = awss3.NewFromConfig(awsCfg, clientOptions(cfg.PublicURL))
	}
	s := &BlobStore{
		client:       client,
		presign:      awss3.NewPresignClient(signer),
		bucket:       cfg.Bucket,
		partSize:     cfg.PartSize,
		maxCopySize:  maxCopySize,
		copyPartSize: copyPartSize,
	}
	s.parts.New = func() any {
		b := make([]byte, s.partSize)
		return &b
	}
	return s, nil
}

func checkEndpoint(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The text of a URL that fails to parse may hold credentials.
		return errors.New("s3: endpoint and public URL must be http or https URLs")
	}
	return nil
}

func clientOptions(endpoint string) func(*awss3.Options) {
	return func(o *awss3.Options) {
		// Path style: S3-compatible servers rarely have the wildcard DNS
		// that bucket-in-host addressing needs.
		o.UsePathStyle = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}
}

// PutTemp implements blob.Store. A body that fits in one part is sent with
// PutObject, a larger one as a multipart upload of PartSize parts.
func (s *BlobStore) PutTemp(ctx context.Context, prefix string, r io.Reader) (string, int64, error) {
	key, err := blob.NewTempKey(prefix)
	if err != nil {
		return "", 0, err
	}
	bufp := s.parts.Get().(*[]byte)
	size, err := s.upload(ctx, key, blob.ContextReader(ctx, r), *bufp)
	if err != nil {
		// The transport may still be reading a failed request's body; the
		// buffer is dropped rather than handed to another upload.
		return "", 0, err
	}
	s.parts.Put(bufp)
	return key, size, nil
}

func (s *BlobStore) upload(ctx context.Context, key string, r io.Reader, buf []byte) (int64, error) {
	var (
		uploadID  *string
		completed []types.CompletedPart
		size      int64
		carry     [1]byte
		carried   bool
	)
	for part := int32(1); ; part++ {
		n, last, err := readPart(r, buf, carry[:], carried)
		if err != nil {
			s.abort(ctx, key, uploadID)
			return 0, fmt.Errorf("s3: upload %s: reading body: %w", key, err)
		}
		carried = !last
		size += int64(n)
		if part == 1 && last {
			_, err := s.client.PutObject(ctx, &awss3.PutObjectInput{
				Bucket:        &s.bucket,
				Key:           &key,
				Body:          bytes.NewReader(buf[:n]),
				ContentLength: aws.Int64(int64(n)),
				ContentType:   aws.String("application/octet-stream"),
			})
			if err != nil {
				// The object may exist if only the response was lost.
				s.cleanup(ctx, func(ctx context.Context) error { return s.Delete(ctx, key) })
				return 0, s.translate("upload", key, err)
			}
			return size, nil
		}
		if part > maxParts {
			s.abort(ctx, key, uploadID)
			return 0, fmt.Errorf("s3: upload %s: body larger than %d parts of %d bytes", key, maxParts, len(buf))
		}
		if uploadID == nil {
			out, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
				Bucket:      &s.bucket,
				Key:         &key,
				ContentType: aws.String("application/octet-stream"),
			})
			if err != nil {
				return 0, s.translate("upload", key, err)
			}
			uploadID = out.UploadId
		}
		out, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket:        &s.bucket,
			Key:           &key,
			UploadId:      uploadID,
			PartNumber:    aws.Int32(part),
			Body:          bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			s.abort(ctx, key, uploadID)
			return 0, s.translate("upload part", key, err)
		}
		completed = append(completed, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(part)})
		if last {
			break
		}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &key,
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	if err != nil {
		s.abort(ctx, key, uploadID)
		s.cleanup(ctx, func(ctx context.Context) error { return s.Delete(ctx, key) })
		return 0, s.translate("complete upload", key, err)
	}
	return size, nil
}

// readPart fills buf with the next part of r and reports whether it is the
// last. A full part is only known to be the last once a read past it finds
// the end, so that read borrows one byte, kept in carry and placed at the
// start of the next part when carried is true.
func readPart(r io.Reader, buf, carry []byte, carried bool) (n int, last bool, err error) {
	if carried {
		buf[0] = carry[0]
		n = 1
	}
	m, err := io.ReadFull(r, buf[n:])
	n += m
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return n, true, nil
	} else if err != nil {
		return 0, false, err
	}
	if _, err := io.ReadFull(r, carry); errors.Is(err, io.EOF) {
		return n, true, nil
	} else if err != nil {
		return 0, false, err
	}
	return n, false, nil
}

// abort releases a failed multipart upload's parts, if one was started.
func (s *BlobStore) abort(ctx context.Context, key string, uploadID *string) {
	if uploadID == nil {
		return
	}
	s.cleanup(ctx, func(ctx context.Context) error {
		_, err := s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: &key, UploadId: uploadID,
		})
		return err
	})
}

// cleanup runs fn even if ctx is cancelled, as a cancelled upload must not
// leave data behind. Its error is ignored: a left-over temporary object is
// removed by the reconciler, and an unfinished multipart upload by the
// bucket's lifecycle rule.
func (s *BlobStore) cleanup(ctx context.Context, fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = fn(ctx)
}

// Promote implements blob.Store: S3 cannot rename, so the object is copied
// and the temporary one deleted. The copy is a new object, so its
// modification time is fresh. If the delete fails, the object is in place at
// key and the error is reported; the reconciler removes the left-over.
func (s *BlobStore) Promote(ctx context.Context, tempKey, key string) error {
	if err := blob.CheckKeys(tempKey, key); err != nil {
		return err
	}
	head, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.bucket, Key: &tempKey})
	if err != nil {
		return s.translate("promote", tempKey, err)
	}
	source := s.bucket + "/" + escapeKey(tempKey)
	if size := aws.ToInt64(head.ContentLength); size > s.maxCopySize {
		if err := s.copyParts(ctx, source, key, size); err != nil {
			return err
		}
	} else {
		_, err = s.client.CopyObject(ctx, &awss3.CopyObjectInput{
			Bucket:            &s.bucket,
			Key:               &key,
			CopySource:        &source,
			MetadataDirective: types.MetadataDirectiveReplace,
			ContentType:       aws.String("application/octet-stream"),
		})
		if err != nil {
			return s.translate("promote "+tempKey+" to", key, err)
		}
	}
	_, err = s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.bucket, Key: &tempKey})
	if err != nil {
		return s.translate("promote: delete", tempKey, err)
	}
	return nil
}

// copyParts copies an object too large for CopyObject with a multipart
// upload whose parts are copied server-side.
func (s *BlobStore) copyParts(ctx context.Context, source, key string, size int64) error {
	out, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket:      &s.bucket,
		Key:         &key,
		ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return s.translate("promote to", key, err)
	}
	var parts []types.CompletedPart
	for off, part := int64(0), int32(1); off < size; off, part = off+s.copyPartSize, part+1 {
		end := min(off+s.copyPartSize, size) - 1
		res, err := s.client.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{
			Bucket:          &s.bucket,
			Key:             &key,
			UploadId:        out.UploadId,
			PartNumber:      aws.Int32(part),
			CopySource:      &source,
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			s.abort(ctx, key, out.UploadId)
			return s.translate("promote to", key, err)
		}
		if res.CopyPartResult == nil {
			s.abort(ctx, key, out.UploadId)
			return fmt.Errorf("s3: promote to %s: part copy without result", key)
		}
		parts = append(parts, types.CompletedPart{ETag: res.CopyPartResult.ETag, PartNumber: aws.Int32(part)})
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &key,
		UploadId:        out.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		s.abort(ctx, key, out.UploadId)
		return s.translate("promote to", key, err)
	}
	return nil
}

// escapeKey URL-encodes a key for CopySource, keeping its slashes.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// Open implements blob.Store.
func (s *BlobStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := blob.CheckKeys(key); err != nil {
		return nil, err
	}
	if err := blob.CheckRange(offset, length); err != nil {
		return nil, err
	}
	if length == 0 {
		// No Range header can ask for zero bytes.
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	in := &awss3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	ranged := offset > 0 || length > 0
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := s.client.GetObject(ctx, in)
	if ranged && statusCode(err) == 416 {
		// Unsatisfiable: the range starts at or past the end of an
		// object that exists.
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err != nil {
		return nil, s.translate("open", key, err)
	}
	if ranged && out.ContentRange == nil {
		// The server ignored the range, as HTTP allows, and sent the
		// whole object: cut the range out here.
		if _, err := io.CopyN(io.Discard, out.Body, offset); err != nil && !errors.Is(err, io.EOF) {
			out.Body.Close()
			return nil, fmt.Errorf("s3: open %s: %w", key, err)
		}
		if length > 0 {
			return struct {
				io.Reader
				io.Closer
			}{io.LimitReader(out.Body, length), out.Body}, nil
		}
	}
	return out.Body, nil
}

// Stat implements blob.Store.
func (s *BlobStore) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := blob.CheckKeys(key); err != nil {
		return blob.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return blob.Info{}, s.translate("stat", key, err)
	}
	return blob.Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Delete implements blob.Store.
func (s *BlobStore) Delete(ctx context.Context, key string) error {
	if err := blob.CheckKeys(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err = s.translate("delete", key, err); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	return nil
}

// List implements blob.Store.
func (s *BlobStore) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.CheckPrefix(prefix); err != nil {
		return err
	}
	pages := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket: &s.bucket,
		Prefix: &prefix,
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s.translate("list", prefix, err)
		}
		for _, o := range page.Contents {
			info := blob.Info{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// PresignGet implements blob.Store. The URL is signed for Config.PublicURL
// when one is set.
func (s *BlobStore) PresignGet(ctx context.Context, key string, ttl time.Duration, contentDisposition, contentType string) (string, error) {
	if err := blob.CheckKeys(key); err != nil {
		return "", err
	}
	if ttl < time.Second || ttl > MaxPresignTTL {
		return "", fmt.Errorf("s3: presign %s: validity %v outside [1s, %v]", key, ttl, MaxPresignTTL)
	}
	in := &awss3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if contentDisposition != "" {
		in.ResponseContentDisposition = &contentDisposition
	}
	if contentType != "" {
		in.ResponseContentType = &contentType
	}
	req, err := s.presign.PresignGetObject(ctx, in, awss3.WithPresignExpires(ttl))
	if err != nil {
		return "", s.translate("presign", key, err)
	}
	return req.URL, nil
}

// Ping implements blob.Store: the bucket must exist and the credentials must
// reach it.
func (s *BlobStore) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("s3: bucket %s: %w", s.bucket, err)
	}
	return nil
}

// translate turns an SDK error about key into blob.ErrNotFound when it says
// the object is absent, and wraps it otherwise. SDK errors carry the
// operation, status, code and request id, never credentials.
func (s *BlobStore) translate(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var (
		noKey    *types.NoSuchKey
		notFound *types.NotFound
		api      smithy.APIError
	)
	if errors.As(err, &noKey) || errors.As(err, &notFound) ||
		(errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound")) {
		return fmt.Errorf("s3: %s %s: %w", op, key, blob.ErrNotFound)
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, err)
}

// statusCode returns the HTTP status of a failed request, or 0.
func statusCode(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
