package keyring

import "encoding/binary"

// AAD names what a ciphertext belongs to, as pairs of what and which, e.g.
// AAD{"table", "sso_configs", "column", "client_secret", "row", id}. The
// scope is always added: a ciphertext opens only for the same scope and the
// same names, in the same order.
type AAD []string

// bytes encodes the names unambiguously: each part length-prefixed, so that
// no two different lists encode alike.
func (a AAD) bytes(scope string) []byte {
	out := []byte("tenantry keyring v1")
	for _, part := range append([]string{scope}, a...) {
		out = binary.AppendUvarint(out, uint64(len(part)))
		out = append(out, part...)
	}
	return out
}
