package imap

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func lfWant(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

func TestLFReader(t *testing.T) {
	for _, in := range []string{
		"", "a", "\r", "\n", "\r\n", "a\r\nb\r\n", "a\rb", "\r\r\n", "\r\n\r\n.\r\n",
		"end with cr\r", "\r\r\r", "x\n\ry",
	} {
		for _, name := range []string{"whole", "onebyte", "halfreader"} {
			var src io.Reader = bytes.NewReader([]byte(in))
			switch name {
			case "onebyte":
				src = iotest.OneByteReader(src)
			case "halfreader":
				src = iotest.HalfReader(src)
			}
			got, err := io.ReadAll(&lfReader{src: src})
			if err != nil {
				t.Fatalf("%q %s: %v", in, name, err)
			}
			if want := lfWant([]byte(in)); !bytes.Equal(got, want) {
				t.Errorf("%q %s: got %q, want %q", in, name, got, want)
			}
		}
	}
}

// A one-octet destination buffer must still see every octet, the held
// CR included.
func TestLFReaderTinyReads(t *testing.T) {
	in := "a\r\n\rb\r"
	r := &lfReader{src: bytes.NewReader([]byte(in))}
	var got []byte
	one := make([]byte, 1)
	for {
		n, err := r.Read(one)
		got = append(got, one[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := "a\n\rb\r"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLFReaderKeepsLinkError(t *testing.T) {
	cut := errors.New("link cut")
	r := &lfReader{src: io.MultiReader(bytes.NewReader([]byte("abc\r")), iotest.ErrReader(cut))}
	got, err := io.ReadAll(r)
	if !errors.Is(err, cut) || r.err != cut {
		t.Fatalf("err %v, r.err %v: want the link error", err, r.err)
	}
	if string(got) != "abc\r" {
		t.Fatalf("got %q", got)
	}
}

func FuzzLFReader(f *testing.F) {
	f.Add([]byte("a\r\nb\r\n"), uint8(3))
	f.Add([]byte("\r\r\n\r"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		var src io.Reader = bytes.NewReader(in)
		if chunk%3 == 1 {
			src = iotest.OneByteReader(src)
		} else if chunk%3 == 2 {
			src = iotest.HalfReader(src)
		}
		r := &lfReader{src: src}
		var got []byte
		buf := make([]byte, int(chunk%7)+1)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if want := lfWant(in); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
