// Package esmtp is linkctl's small SMTP client for the commands go-smtp's
// client cannot send: ETRN (RFC 1985, package etrn) and ATRN (RFC
// 2645, package fetch/odmr).
//
// A session: NewClient reads the 220 greeting; Hello sends EHLO and learns
// the extensions (falling back to HELO); StartTLS upgrades (RFC 3207) and
// refuses bytes sent before the handshake, after which the caller says EHLO
// again; Auth picks PLAIN, LOGIN or CRAM-MD5 and refuses to send a password
// in the clear unless told to; then ETRN or ATRN; Quit. After an accepted
// ATRN, Hijack hands the connection to the turned-around SMTP session.
// Every read and write has a deadline; replies are read with ReadReply,
// which bounds line length and line count, so a hostile server cannot make
// the client hang or grow without end.
package esmtp
