//go:build linux

package localfs

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// writebackWindow is how much of a file is written between two starts of
// its writeback.
const writebackWindow = 8 << 20

// writeback sends a file to disk while it is being written instead of all
// at once when it is synced, so that the sync at the end of an upload waits
// for the last few MiB rather than for the whole body. What is on disk is
// dropped from the page cache as the file grows: an upload is rarely read
// back soon, and caching it whole would let every large upload evict what
// readers use, and keep claiming memory the kernel has not handed out
// before, which on some virtual machines costs more than the disk write.
// All of it is advice: the sync alone makes the file durable, and a file
// system that refuses the advice is simply synced at the end.
type writeback struct {
	conn syscall.RawConn
	// [prev, started) is the range whose writeback was started last, and
	// [0, prev) is on disk and out of the cache.
	prev, started int64
	off           bool
}

func newWriteback(f *os.File) *writeback {
	conn, err := f.SyscallConn()
	return &writeback{conn: conn, off: err != nil}
}

// wrote is told the file's size after each write.
func (w *writeback) wrote(size int64) {
	if w.off || size-w.started < writebackWindow {
		return
	}
	err := w.conn.Control(func(fd uintptr) {
		if err := unix.SyncFileRange(int(fd), w.started, size-w.started, unix.SYNC_FILE_RANGE_WRITE); err != nil {
			w.off = true
			return
		}
		// The previous range had a window's worth of writes to reach the
		// disk; waiting for it also holds a writer back to the disk's pace.
		if w.started > w.prev {
			const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
			if unix.SyncFileRange(int(fd), w.prev, w.started-w.prev, wait) == nil {
				_ = unix.Fadvise(int(fd), w.prev, w.started-w.prev, unix.FADV_DONTNEED)
			}
		}
	})
	if err != nil {
		w.off = true
	}
	w.prev, w.started = w.started, size
}

// synced is called once the whole file is on disk.
func (w *writeback) synced() {
	if w.off {
		return
	}
	_ = w.conn.Control(func(fd uintptr) {
		_ = unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED)
	})
}
