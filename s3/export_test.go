package s3

// SetCopyLimits lowers the size above which Promote copies in parts, and the
// size of those parts, so that tests reach that path with small objects.
func (s *BlobStore) SetCopyLimits(maxCopy, part int64) {
	s.maxCopySize, s.copyPartSize = maxCopy, part
}
