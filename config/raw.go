package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The raw structs mirror the file's shape. Every leaf is the *yaml.Node it
// was written as (nil when absent), so validation can say where each value
// came from; sections are pointers (nil when absent, so "flush:" alone turns
// the flush section on with its defaults). The yaml tags are read by
// decodeStruct below, not by the yaml package: yaml's own decoder loses
// KnownFields below a custom unmarshaler and stops at the first odd value,
// while this walk reports every unknown key at every depth with its line.

type rawConfig struct {
	Node          *yaml.Node `yaml:"-"`
	Link          *rawLink   `yaml:"link"`
	StateDir      *yaml.Node `yaml:"state_dir"`
	ControlSocket *yaml.Node `yaml:"control_socket"`
	MetricsFile   *yaml.Node `yaml:"metrics_file"`
	Log           *rawLog    `yaml:"log"`
	Pipeline      *yaml.Node `yaml:"pipeline"`
	Flush         *rawFlush  `yaml:"flush"`
	ETRN          *rawETRN   `yaml:"etrn"`
	Fetch         *rawFetch  `yaml:"fetch"`
	Drop          *rawDrop   `yaml:"drop"`
	Dial          *rawDial   `yaml:"dial"`
}

type rawLink struct {
	Node     *yaml.Node `yaml:"-"`
	Watch    *yaml.Node `yaml:"watch"`
	Settle   *yaml.Node `yaml:"settle"`
	Interval *yaml.Node `yaml:"interval"`
	// The shorthand for a single uplink: one policy for every link.
	Metered      *yaml.Node      `yaml:"metered"`
	Budget       *rawBudget      `yaml:"budget"`
	MaxMessage   *yaml.Node      `yaml:"max_message"`
	Policies     []rawLinkPolicy `yaml:"policies"`
	PoliciesNode *yaml.Node      `yaml:"-policies"`
}

type rawLinkPolicy struct {
	Node       *yaml.Node `yaml:"-"`
	Match      *yaml.Node `yaml:"match"`
	Metered    *yaml.Node `yaml:"metered"`
	Budget     *rawBudget `yaml:"budget"`
	MaxMessage *yaml.Node `yaml:"max_message"`
}

type rawBudget struct {
	Node  *yaml.Node `yaml:"-"`
	Run   *yaml.Node `yaml:"run"`
	Day   *yaml.Node `yaml:"day"`
	Month *yaml.Node `yaml:"month"`
}

type rawLog struct {
	Node   *yaml.Node `yaml:"-"`
	File   *yaml.Node `yaml:"file"`
	Syslog *yaml.Node `yaml:"syslog"`
	Level  *yaml.Node `yaml:"level"`
	Format *yaml.Node `yaml:"format"`
}

// rawStep is the map form of a pipeline item.
type rawStep struct {
	Node    *yaml.Node `yaml:"-"`
	Stage   *yaml.Node `yaml:"stage"`
	Exec    *yaml.Node `yaml:"exec"`
	Name    *yaml.Node `yaml:"name"`
	Timeout *yaml.Node `yaml:"timeout"`
	OnError *yaml.Node `yaml:"on_error"`
}

type rawFlush struct {
	Node         *yaml.Node `yaml:"-"`
	MTA          *yaml.Node `yaml:"mta"`
	Wait         *yaml.Node `yaml:"wait"`
	Timeout      *yaml.Node `yaml:"timeout"`
	OnError      *yaml.Node `yaml:"on_error"`
	FlushCommand *yaml.Node `yaml:"flush_command"`
	ListCommand  *yaml.Node `yaml:"list_command"`
	Command      *yaml.Node `yaml:"command"`
	Args         *yaml.Node `yaml:"args"`
	Env          *yaml.Node `yaml:"env"`
}

type rawETRN struct {
	Node          *yaml.Node      `yaml:"-"`
	Quiet         *yaml.Node      `yaml:"quiet"`
	QuietMax      *yaml.Node      `yaml:"quiet_max"`
	Ports         *yaml.Node      `yaml:"ports"`
	CountLoopback *yaml.Node      `yaml:"count_loopback"`
	Parallel      *yaml.Node      `yaml:"parallel"`
	Timeout       *yaml.Node      `yaml:"timeout"`
	OnError       *yaml.Node      `yaml:"on_error"`
	Servers       []rawETRNServer `yaml:"servers"`
	ServersNode   *yaml.Node      `yaml:"-servers"` // the sequence itself, for its line
}

type rawETRNServer struct {
	Node            *yaml.Node `yaml:"-"`
	Name            *yaml.Node `yaml:"name"`
	Server          *yaml.Node `yaml:"server"`
	Domains         *yaml.Node `yaml:"domains"`
	TLS             *yaml.Node `yaml:"tls"`
	TLSPin          *yaml.Node `yaml:"tls_pin"`
	CAFile          *yaml.Node `yaml:"ca_file"`
	TLSVerify       *yaml.Node `yaml:"tls_verify"`
	Helo            *yaml.Node `yaml:"helo"`
	User            *yaml.Node `yaml:"user"`
	Password        *yaml.Node `yaml:"password"`
	PasswordFile    *yaml.Node `yaml:"password_file"`
	PasswordCommand *yaml.Node `yaml:"password_command"`
	Timeout         *yaml.Node `yaml:"timeout"`
}

type rawFetch struct {
	Node         *yaml.Node   `yaml:"-"`
	Parallel     *yaml.Node   `yaml:"parallel"`
	Deliver      *rawDeliver  `yaml:"deliver"`
	Received     *yaml.Node   `yaml:"received"`
	Timeout      *yaml.Node   `yaml:"timeout"`
	OnError      *yaml.Node   `yaml:"on_error"`
	SessionFloor *yaml.Node   `yaml:"session_floor"`
	MinRate      *yaml.Node   `yaml:"min_rate"`
	PerMessage   *yaml.Node   `yaml:"per_message"`
	SlotWait     *yaml.Node   `yaml:"slot_wait"`
	MaxMessages  *yaml.Node   `yaml:"max_messages"`
	AckWindow    *yaml.Node   `yaml:"ack_window"`
	RecordSync   *yaml.Node   `yaml:"record_sync"`
	Accounts     []rawAccount `yaml:"accounts"`
	AccountsNode *yaml.Node   `yaml:"-accounts"`
}

type rawDeliver struct {
	Node     *yaml.Node `yaml:"-"`
	SMTP     *yaml.Node `yaml:"smtp"`
	LMTP     *yaml.Node `yaml:"lmtp"`
	MDA      *yaml.Node `yaml:"mda"`
	Maildir  *yaml.Node `yaml:"maildir"`
	Sessions *yaml.Node `yaml:"sessions"`
	TLS      *yaml.Node `yaml:"tls"`
	TLSPin   *yaml.Node `yaml:"tls_pin"`
	CAFile   *yaml.Node `yaml:"ca_file"`
	Verify   *yaml.Node `yaml:"tls_verify"`
	Domain   *yaml.Node `yaml:"domain"`
}

type rawAccount struct {
	Node            *yaml.Node  `yaml:"-"`
	Name            *yaml.Node  `yaml:"name"`
	Proto           *yaml.Node  `yaml:"proto"`
	Server          *yaml.Node  `yaml:"server"`
	TLS             *yaml.Node  `yaml:"tls"`
	TLSPin          *yaml.Node  `yaml:"tls_pin"`
	CAFile          *yaml.Node  `yaml:"ca_file"`
	TLSVerify       *yaml.Node  `yaml:"tls_verify"`
	User            *yaml.Node  `yaml:"user"`
	Password        *yaml.Node  `yaml:"password"`
	PasswordFile    *yaml.Node  `yaml:"password_file"`
	PasswordCommand *yaml.Node  `yaml:"password_command"`
	Auth            *yaml.Node  `yaml:"auth"`
	To              *yaml.Node  `yaml:"to"`
	Keep            *yaml.Node  `yaml:"keep"`
	FetchAll        *yaml.Node  `yaml:"fetchall"`
	Limit           *yaml.Node  `yaml:"limit"`
	FetchLimit      *yaml.Node  `yaml:"fetchlimit"`
	MaxMessages     *yaml.Node  `yaml:"max_messages"`
	CommitEvery     *yaml.Node  `yaml:"commit_every"`
	KeepDays        *yaml.Node  `yaml:"keep_days"`
	Folders         *yaml.Node  `yaml:"folders"`
	Folder          *yaml.Node  `yaml:"folder"`
	Unseen          *yaml.Node  `yaml:"unseen"`
	MarkSeen        *yaml.Node  `yaml:"mark_seen"`
	MoveTo          *yaml.Node  `yaml:"move_to"`
	Expunge         *yaml.Node  `yaml:"expunge"`
	Idle            *yaml.Node  `yaml:"idle"`
	Compress        *yaml.Node  `yaml:"compress"`
	Plugin          *yaml.Node  `yaml:"plugin"`
	Timeout         *yaml.Node  `yaml:"timeout"`
	Deliver         *rawDeliver `yaml:"deliver"`
	LocalDomains    *yaml.Node  `yaml:"localdomains"`
	Envelope        *yaml.Node  `yaml:"envelope"`
	QVirtual        *yaml.Node  `yaml:"qvirtual"`
	Domains         *yaml.Node  `yaml:"domains"`
}

type rawDrop struct {
	Node      *yaml.Node `yaml:"-"`
	Command   *yaml.Node `yaml:"command"`
	Interface *yaml.Node `yaml:"interface"`
	Idle      *yaml.Node `yaml:"idle"`
	Timeout   *yaml.Node `yaml:"timeout"`
	OnError   *yaml.Node `yaml:"on_error"`
}

// decoder walks a yaml.Node tree into raw structs, collecting problems.
type decoder struct {
	file     string
	problems Errors
	// misspelt records, per mapping, the known keys that an unknown key
	// looked like, so that "pasword: x" is not also reported as a missing
	// password.
	misspelt map[*yaml.Node][]string
	// visited counts values walked. Aliases can make a small file expand
	// into a huge tree (each *list visited once per use); past maxVisits
	// the walk stops with one problem instead of running for hours.
	visited int
	tooBig  bool
}

const maxVisits = 200000

// visit counts n values; false once the budget is spent.
func (d *decoder) visit(at *yaml.Node, n int) bool {
	d.visited += n
	if d.visited <= maxVisits {
		return true
	}
	if !d.tooBig {
		d.tooBig = true
		d.add(at, "", "too many values once YAML aliases are expanded", "expected a config of human size; use fewer nested *aliases")
	}
	return false
}

// wasMisspelt reports whether one of keys was suggested for a misspelling
// in mapping n.
func (d *decoder) wasMisspelt(n *yaml.Node, keys ...string) bool {
	for _, s := range d.misspelt[n] {
		for _, k := range keys {
			if s == k {
				return true
			}
		}
	}
	return false
}

func (d *decoder) add(n *yaml.Node, path, msg, expected string) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, &Problem{File: d.file, Line: line, Path: path, Msg: msg, Expected: expected})
}

// resolve follows aliases (*name) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n was written as nothing ("key:" or "key: null").
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's key/value pairs, with YAML merge keys ("<<:
// *defaults") expanded: explicit keys win over merged ones.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var explicit, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" && depth < 10 {
			v = resolve(v)
			var srcs []*yaml.Node
			switch {
			case v != nil && v.Kind == yaml.MappingNode:
				srcs = []*yaml.Node{v}
			case v != nil && v.Kind == yaml.SequenceNode:
				for _, s := range v.Content {
					srcs = append(srcs, resolve(s))
				}
			default:
				srcs = []*yaml.Node{v}
			}
			for _, s := range srcs {
				if !d.visit(k, 1) {
					break
				}
				if s == nil || s.Kind != yaml.MappingNode {
					d.add(k, path+"<<", "merge of something that is not a mapping", "expected <<: *anchor of a mapping")
					continue
				}
				merged = append(merged, d.pairs(s, path, depth+1)...)
			}
			continue
		}
		explicit = append(explicit, pair{k, v})
	}
	if len(merged) == 0 {
		return explicit
	}
	seen := map[string]bool{}
	for _, p := range explicit {
		seen[p.key.Value] = true
	}
	out := explicit
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

// join builds "a.b" paths; the root has no prefix.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeStruct fills the raw struct that out points to from mapping n.
func (d *decoder) decodeStruct(n *yaml.Node, path string, out reflect.Value) {
	n = resolve(n)
	t := out.Type()
	type field struct {
		idx      int
		listNode int // index of the "-key" field holding a list's own node, or -1
	}
	fields := map[string]field{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		switch {
		case tag == "-":
			out.Field(i).Set(reflect.ValueOf(n))
		case strings.HasPrefix(tag, "-"):
		default:
			fields[tag] = field{i, -1}
			names = append(names, tag)
		}
	}
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("yaml"); strings.HasPrefix(tag, "-") && len(tag) > 1 {
			f := fields[tag[1:]]
			f.listNode = i
			fields[tag[1:]] = f
		}
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.add(n, path, "is "+describe(n)+", not a mapping", "expected key: value lines below it")
		return
	}
	if !d.visit(n, len(n.Content)/2+1) {
		return
	}
	firstAt := map[string]int{}
	for _, p := range d.pairs(n, path, 0) {
		k := resolve(p.key)
		if k.Kind != yaml.ScalarNode {
			d.add(p.key, path, "a key must be a plain word", "expected one of: "+strings.Join(names, ", "))
			continue
		}
		kp := join(path, k.Value)
		if path == "" && strings.HasPrefix(k.Value, "x-") {
			continue // a place for anchors (x-defaults: &d {...}), as in Compose files
		}
		f, ok := fields[k.Value]
		if !ok {
			exp := "expected one of: " + strings.Join(names, ", ")
			if s := closest(k.Value, names); s != "" {
				exp += "; did you mean " + s + "?"
				if d.misspelt == nil {
					d.misspelt = map[*yaml.Node][]string{}
				}
				d.misspelt[n] = append(d.misspelt[n], s)
			}
			d.add(p.key, kp, "unknown key", exp)
			continue
		}
		if line, dup := firstAt[k.Value]; dup {
			d.add(p.key, kp, "duplicate key", fmt.Sprintf("first written at line %d; write it once", line))
			continue
		}
		firstAt[k.Value] = p.key.Line
		fv := out.Field(f.idx)
		v := p.val
		switch fv.Kind() {
		case reflect.Pointer:
			if fv.Type() == reflect.TypeOf((*yaml.Node)(nil)) {
				r := resolve(v)
				if r != nil && r != v {
					// keep the line where the alias was used: that is where
					// the user looks
					c := *r
					c.Line, c.Column = v.Line, v.Column
					r = &c
				}
				fv.Set(reflect.ValueOf(r))
				continue
			}
			sv := reflect.New(fv.Type().Elem())
			d.decodeStruct(v, kp, sv.Elem())
			fv.Set(sv)
		case reflect.Slice:
			r := resolve(v)
			if f.listNode >= 0 {
				out.Field(f.listNode).Set(reflect.ValueOf(r))
			}
			if isNull(r) {
				continue
			}
			if r.Kind != yaml.SequenceNode {
				d.add(v, kp, "is "+describe(r)+", not a list", "expected a list of entries, each starting with -")
				continue
			}
			sl := reflect.MakeSlice(fv.Type(), len(r.Content), len(r.Content))
			for i, e := range r.Content {
				d.decodeStruct(e, fmt.Sprintf("%s[%d]", kp, i), sl.Index(i))
				if sl.Index(i).Field(0).IsNil() {
					sl.Index(i).Field(0).Set(reflect.ValueOf(e))
				}
			}
			fv.Set(sl)
		}
	}
}

// describe names a node's kind for messages ("a list", "the text \"x\"").
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil || n.Kind == 0:
		return "empty"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.ShortTag() == "!!null":
		return "empty"
	}
	return fmt.Sprintf("%q", n.Value)
}

// closest suggests the known key nearest to a misspelt one (edit distance
// at most 2), or "".
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n, bestD); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			c = min(c, prev[j]+1, cur[j-1]+1)
			cur[j] = c
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
