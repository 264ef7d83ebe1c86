package s3

// Watcher is told of every change to an object's versions, with the
// versions of that key as they are right after it (newest first). S3
// Metadata tables are kept from it. Watching is asked first so that an
// unwatched bucket costs nothing; ObjectChanged is called with the store
// locked and must not call back into the service.
type Watcher interface {
	Watching(bucket string) bool
	ObjectChanged(bucket, key string, versions []ObjectState)
}

// changedLocked reports a change of key in b to the watcher; the caller
// holds s.mu.
func (s *Service) changedLocked(b *bucket, key string) {
	if s.Watcher == nil || !s.Watcher.Watching(b.name) {
		return
	}
	vs := b.objects[key]
	out := make([]ObjectState, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- {
		out = append(out, watchedState(vs[i], i == len(vs)-1))
	}
	s.Watcher.ObjectChanged(b.name, key, out)
}

// changed is changedLocked for callers that do not hold s.mu.
func (s *Service) changed(bucketName, key string) {
	if s.Watcher == nil || !s.Watcher.Watching(bucketName) {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b, ok := s.buckets[bucketName]; ok {
		s.changedLocked(b, key)
	}
}

// watchedState is stateOf without the stored bytes, which no table holds.
func watchedState(v *objectVersion, latest bool) ObjectState {
	return ObjectState{
		Key: v.key, IsLatest: latest, VersionID: v.versionID, DeleteMarker: v.deleteMarker,
		Encryption: string(v.env.kind), KMSKeyARN: v.env.kmsKeyARN, BucketKey: v.env.bucketKey,
		ETag: v.etag, LastModified: v.lastModified, StorageClass: v.storageClass, Checksum: v.checksumAlg,
		Size: v.size, Multipart: len(v.parts) > 0,
	}
}

// HasBucket reports whether a bucket exists.
func (s *Service) HasBucket(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.buckets[name]
	return ok
}
