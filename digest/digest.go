// Package digest computes the SHA-256 and MD5 of a stream in the same pass
// that reads it. The bytes a caller reads are copied into a small pool of
// chunks that two goroutines hash side by side, so that on a multi-core
// machine neither hash slows the stream to its own speed, and memory stays at
// the pool's size whatever the stream's length.
package digest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

const (
	chunkSize = 256 << 10
	// poolSize chunks bound the memory (1 MiB) and how far hashing may
	// lag behind reading.
	poolSize = 4
)

// Sums are the digests of a whole stream, in lower-case hex.
type Sums struct {
	SHA256 string
	MD5    string
	Size   int64
}

type chunk struct {
	buf  []byte
	refs atomic.Int32
}

// chunks recycles chunks between Readers, so that a server reading many
// uploads does not allocate a pool's worth of memory for each of them.
var chunks = sync.Pool{New: func() any { //nolint:gochecknoglobals // a cache of empty buffers
	return &chunk{buf: make([]byte, 0, chunkSize)}
}}

// Reader passes a stream through, hashing what is read.
type Reader struct {
	src  io.Reader
	size int64
	cur  *chunk
	// taken counts the chunks taken from chunks, at most poolSize; each is
	// in free, in cur or being hashed.
	taken int
	free  chan *chunk
	jobs  [2]chan *chunk
	wg    sync.WaitGroup
	sums  [2]hash.Hash
	eof   bool
	done  bool
}

// NewReader returns a Reader over src. Close it if it is abandoned before
// the end of the stream, to stop its goroutines.
func NewReader(src io.Reader) *Reader {
	r := &Reader{src: src, free: make(chan *chunk, poolSize), sums: [2]hash.Hash{sha256.New(), md5.New()}}
	for i := range r.jobs {
		r.jobs[i] = make(chan *chunk, poolSize)
		h, jobs := r.sums[i], r.jobs[i]
		r.wg.Go(func() {
			for c := range jobs {
				h.Write(c.buf)
				if c.refs.Add(-1) == 0 {
					r.free <- c
				}
			}
		})
	}
	return r
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.done {
		return 0, errors.New("digest: read after close")
	}
	n, err := r.src.Read(p)
	r.size += int64(n)
	for data := p[:n]; len(data) > 0; {
		if r.cur == nil {
			r.cur = r.nextChunk()
		}
		k := min(len(data), cap(r.cur.buf)-len(r.cur.buf))
		r.cur.buf = append(r.cur.buf, data[:k]...)
		data = data[k:]
		if len(r.cur.buf) == cap(r.cur.buf) {
			r.dispatch()
		}
	}
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}

// nextChunk returns an empty chunk: a hashed one if there is one, else a
// new one while the pool is not full, else the next to be hashed. Taking
// chunks only as needed spares a short stream the whole pool.
func (r *Reader) nextChunk() *chunk {
	var c *chunk
	select {
	case c = <-r.free:
	default:
		if r.taken < poolSize {
			r.taken++
			c = chunks.Get().(*chunk)
		} else {
			c = <-r.free
		}
	}
	c.buf = c.buf[:0]
	return c
}

func (r *Reader) dispatch() {
	if r.cur == nil {
		return
	}
	r.cur.refs.Store(int32(len(r.jobs)))
	for _, jobs := range r.jobs {
		jobs <- r.cur
	}
	r.cur = nil
}

// Sums returns the digests of everything read. It must be called after the
// stream was read to its end; it stops the Reader's goroutines.
func (r *Reader) Sums() (Sums, error) {
	if !r.eof {
		r.Close()
		return Sums{}, errors.New("digest: stream not read to its end")
	}
	r.finish()
	return Sums{
		SHA256: hex.EncodeToString(r.sums[0].Sum(nil)),
		MD5:    hex.EncodeToString(r.sums[1].Sum(nil)),
		Size:   r.size,
	}, nil
}

// Size reports how many bytes have been read so far.
func (r *Reader) Size() int64 { return r.size }

// Close stops the hashing goroutines; the sums are then no longer available
// unless the stream had been read to its end.
func (r *Reader) Close() { r.finish() }

func (r *Reader) finish() {
	if r.done {
		return
	}
	r.done = true
	r.dispatch()
	for _, jobs := range r.jobs {
		close(jobs)
	}
	r.wg.Wait()
	// The hashing goroutines are gone and every chunk taken is back in
	// free: none can be touched again by this Reader.
	for range r.taken {
		chunks.Put(<-r.free)
	}
	r.taken = 0
}
