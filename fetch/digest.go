package fetch

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// messageDigest identifies a message independently of its UID, so that
// the engine recognises mail it already delivered when the server's UIDs
// can no longer be trusted (an IMAP UIDVALIDITY change, RFC 3501 section
// 2.3.1.1; a POP3 server that reuses or renumbers UIDLs). It hashes the
// Message-ID and the size of the message as retrieved; without a
// Message-ID, the Date, From, To and Subject fields and the size. It is
// computed from the header already read for the envelope: no extra fetch.
// 64 bits keep the record small; a false match needs two messages with
// the same hash among the ~10^5 remembered (odds about 10^-9).
func messageDigest(h headerInfo, size int64) uint64 {
	s := sha256.New()
	if h.MessageID != "" {
		s.Write([]byte("mid\x00" + h.MessageID + "\x00"))
	} else {
		s.Write([]byte("hdr\x00" + h.Date + "\x00" + h.From + "\x00" + h.To + "\x00" + h.Subject + "\x00"))
	}
	s.Write([]byte(strconv.FormatInt(size, 10)))
	d := binary.BigEndian.Uint64(s.Sum(nil))
	if d == 0 {
		d = 1 // 0 means "no digest" in the seen-store
	}
	return d
}
