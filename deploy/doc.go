// Package deploy checks the deployment files at the repository's root, the
// Dockerfile and compose.yaml, as far as a machine without a container
// engine can: that the binary builds with the Dockerfile's own flags into
// what the image needs, and that the compose file is consistent and sets
// only configuration the README documents. It holds no code of its own.
package deploy
