package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
)

// colCommitTS is the metadata column with each row's commit time
// (docs/output-format.md).
const colCommitTS = "_cdc_commit_ts"

// dest is where a cdc2s3 under test writes: a local directory or a prefix
// of the local S3 server's bucket. Listing and reading go around cdc2s3,
// the way a downstream reader would see the files.
type dest struct {
	Kind string   // "local" or "s3"
	URL  string   // --dest
	Env  []string // extra environment for cdc2s3

	dir    string // local
	s3     *s3.Client
	bucket string
	prefix string // ends in "/"
}

func localDest(dir string) *dest {
	return &dest{Kind: "local", URL: dir, dir: dir}
}

// s3Env is the local S3 server.
type s3Env struct {
	Endpoint, Access, Secret, Bucket string
}

func (e s3Env) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(e.Access, e.Secret, ""),
	})
}

// createBucket creates the bucket, waiting for the server to answer.
func (e s3Env) createBucket(ctx context.Context) error {
	c := e.client()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(e.Bucket)})
		if err == nil || strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("create bucket %s at %s: %w", e.Bucket, e.Endpoint, err)
}

func (e s3Env) dest(prefix string) *dest {
	return &dest{
		Kind: "s3", URL: "s3://" + e.Bucket + "/" + prefix,
		Env: []string{
			"AWS_ACCESS_KEY_ID=" + e.Access, "AWS_SECRET_ACCESS_KEY=" + e.Secret,
			"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_S3=" + e.Endpoint,
		},
		s3: e.client(), bucket: e.Bucket, prefix: prefix + "/",
	}
}

// files lists the table folder public/items: its files whose names start
// with prefix, in key order.
func (d *dest) files(ctx context.Context, prefix string) ([]fileInfo, error) {
	if d.s3 == nil {
		return listFiles(filepath.Join(d.dir, "public", "items"), prefix)
	}
	var out []fileInfo
	p := s3.NewListObjectsV2Paginator(d.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(d.bucket), Prefix: aws.String(d.prefix + "public/items/" + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", d.URL, err)
		}
		for _, o := range page.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), ".parquet") {
				out = append(out, fileInfo{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// open returns random access to one file.
func (d *dest) open(ctx context.Context, f fileInfo) (io.ReaderAt, int64, func(), error) {
	if d.s3 == nil {
		fh, err := os.Open(f.Key)
		if err != nil {
			return nil, 0, nil, err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return nil, 0, nil, err
		}
		return fh, st.Size(), func() { fh.Close() }, nil
	}
	out, err := d.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(f.Key)})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("get %s: %w", f.Key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("get %s: %w", f.Key, err)
	}
	return bytes.NewReader(b), int64(len(b)), func() {}, nil
}

// rowCount returns the number of rows of a Parquet file, from its footer.
func (d *dest) rowCount(ctx context.Context, f fileInfo) (int64, error) {
	ra, size, done, err := d.open(ctx, f)
	if err != nil {
		return 0, err
	}
	defer done()
	pf, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Key, err)
	}
	return pf.NumRows(), nil
}

// commitTimes returns the _cdc_commit_ts of every row of a Parquet file,
// reading no other column.
func (d *dest) commitTimes(ctx context.Context, f fileInfo) ([]time.Time, error) {
	ra, size, done, err := d.open(ctx, f)
	if err != nil {
		return nil, err
	}
	defer done()
	return readCommitTimes(ra, size)
}

func readCommitTimes(ra io.ReaderAt, size int64) ([]time.Time, error) {
	pf, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, err
	}
	leaf, ok := pf.Schema().Lookup(colCommitTS)
	if !ok {
		return nil, fmt.Errorf("no %s column", colCommitTS)
	}
	out := make([]time.Time, 0, pf.NumRows())
	buf := make([]parquet.Value, 1024)
	for _, rg := range pf.RowGroups() {
		pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
		for {
			p, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				pages.Close()
				return nil, err
			}
			vals := p.Values()
			for {
				n, err := vals.ReadValues(buf)
				for _, v := range buf[:n] {
					if !v.IsNull() {
						out = append(out, time.UnixMicro(v.Int64()))
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					parquet.Release(p)
					pages.Close()
					return nil, err
				}
			}
			parquet.Release(p)
		}
		pages.Close()
	}
	return out, nil
}
