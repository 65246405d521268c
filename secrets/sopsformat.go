package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"go.yaml.in/yaml/v3"
)

// This file reads and writes the sops file format (YAML store) without the
// sops module: values are AES-256-GCM with a 32-byte IV and the colon-joined
// key path plus ":" as additional data; the MAC is the upper-case hex
// SHA-512 of every leaf value in document order, itself encrypted with the
// lastmodified timestamp as additional data; the 32-byte data key is
// age-encrypted (armored) to every recipient under sops.age.

const (
	// sopsVersion is the sops release whose file format homestaker writes.
	sopsVersion = "3.13.3"
	// defaultUnencryptedSuffix is sops' default: keys ending with it stay
	// plain text.
	defaultUnencryptedSuffix = "_unencrypted"
	sopsKey                  = "sops"
	sopsIVSize               = 32
	dataKeySize              = 32
)

// macOnlyEncryptedInit starts the MAC of files with mac_only_encrypted, so
// such a MAC never equals one over all values (as sops does).
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

var encValueRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// ageStanza is one entry of sops.age: a recipient and the data key
// encrypted to it.
type ageStanza struct {
	recipient string
	enc       string
}

// sopsFile is a parsed sops YAML file: the document (values untouched, so
// rewriting keeps every ciphertext byte for byte) and its metadata.
type sopsFile struct {
	doc  *yaml.Node // document node
	root *yaml.Node // its top-level mapping, without the sops entry
	ages []ageStanza

	lastModified string // as written
	mac          string // ENC[…] of the MAC
	version      string

	// Which values are encrypted: at most one rule is set, as in sops.
	unencryptedSuffix string
	encryptedSuffix   string
	unencryptedRegex  *regexp.Regexp
	encryptedRegex    *regexp.Regexp
	macOnlyEncrypted  bool
	rawRules          [][2]string // rule name and value, to write back
}

// parseSopsFile parses a sops-encrypted YAML file. It refuses what
// homestaker cannot rewrite faithfully (several documents, key types other
// than age, Shamir key groups, comment-based encryption rules).
func parseSopsFile(data []byte) (*sopsFile, error) {
	// Decoding into a map makes the parser reject duplicate keys, as sops does.
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(make(map[string]any)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds more than one YAML document; homestaker writes one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the file is not a YAML mapping")
	}
	f := &sopsFile{doc: &doc, root: doc.Content[0]}
	var meta *yaml.Node
	content := f.root.Content
	for i := 0; i+1 < len(content); i += 2 {
		if content[i].Kind == yaml.ScalarNode && content[i].Value == sopsKey {
			meta = content[i+1]
			f.root.Content = append(append([]*yaml.Node{}, content[:i]...), content[i+2:]...)
			break
		}
	}
	if meta == nil {
		return nil, errors.New("the file has no sops metadata: it is not encrypted with sops")
	}
	if err := f.parseMetadata(meta); err != nil {
		return nil, fmt.Errorf("sops metadata: %w", err)
	}
	return f, nil
}

func (f *sopsFile) parseMetadata(meta *yaml.Node) error {
	if meta.Kind != yaml.MappingNode {
		return errors.New("not a mapping")
	}
	rules := 0
	for i := 0; i+1 < len(meta.Content); i += 2 {
		k, v := meta.Content[i].Value, meta.Content[i+1]
		scalar := func() (string, error) {
			if v.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("%s is not a single value", k)
			}
			return v.Value, nil
		}
		var err error
		switch k {
		case "age":
			err = f.parseAge(v)
		case "lastmodified":
			f.lastModified, err = scalar()
		case "mac":
			f.mac, err = scalar()
		case "version":
			f.version, err = scalar()
		case "unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex":
			var s string
			if s, err = scalar(); err != nil || s == "" {
				break
			}
			rules++
			f.rawRules = append(f.rawRules, [2]string{k, s})
			switch k {
			case "unencrypted_suffix":
				f.unencryptedSuffix = s
			case "encrypted_suffix":
				f.encryptedSuffix = s
			case "unencrypted_regex":
				f.unencryptedRegex, err = regexp.Compile(s)
			case "encrypted_regex":
				f.encryptedRegex, err = regexp.Compile(s)
			}
		case "mac_only_encrypted":
			var s string
			if s, err = scalar(); err == nil {
				f.macOnlyEncrypted, err = strconv.ParseBool(s)
			}
		case "shamir_threshold":
			// Meaningful only with key groups, refused below.
		case "key_groups", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms":
			if !(v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
				return fmt.Errorf("the file uses %s keys; homestaker manages files encrypted to age recipients only", k)
			}
		case "unencrypted_comment_regex", "encrypted_comment_regex":
			return fmt.Errorf("the file uses %s, which homestaker does not support", k)
		default:
			return fmt.Errorf("unknown metadata entry %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	if rules > 1 {
		return errors.New("more than one of unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex")
	}
	if rules == 0 {
		f.unencryptedSuffix = defaultUnencryptedSuffix
	}
	if len(f.ages) == 0 {
		return errors.New("no age recipients")
	}
	if _, err := time.Parse(time.RFC3339, f.lastModified); err != nil {
		return fmt.Errorf("lastmodified %q is not an RFC 3339 time", f.lastModified)
	}
	return nil
}

func (f *sopsFile) parseAge(v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode {
		return errors.New("not a list")
	}
	for _, item := range v.Content {
		if item.Kind != yaml.MappingNode {
			return errors.New("an entry is not a mapping")
		}
		var s ageStanza
		for i := 0; i+1 < len(item.Content); i += 2 {
			switch item.Content[i].Value {
			case "recipient":
				s.recipient = item.Content[i+1].Value
			case "enc":
				s.enc = item.Content[i+1].Value
			}
		}
		if s.recipient == "" || s.enc == "" {
			return errors.New("an entry lacks recipient or enc")
		}
		f.ages = append(f.ages, s)
	}
	return nil
}

// dataKey opens the data key with the first identity that matches one of
// the file's age recipients.
func (f *sopsFile) dataKey(identities []age.Identity) ([]byte, error) {
	if len(identities) == 0 {
		return nil, errors.New("no age identity given to open it")
	}
	var lastErr error
	for _, s := range f.ages {
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(s.enc)), identities...)
		if err != nil {
			var noMatch *age.NoIdentityMatchError
			if !errors.As(err, &noMatch) {
				lastErr = fmt.Errorf("data key for %s: %w", s.recipient, err)
			}
			continue
		}
		key, err := io.ReadAll(io.LimitReader(r, dataKeySize+1))
		if err != nil {
			lastErr = fmt.Errorf("data key for %s: %w", s.recipient, err)
			continue
		}
		if len(key) != dataKeySize {
			return nil, fmt.Errorf("data key for %s has %d bytes, not %d", s.recipient, len(key), dataKeySize)
		}
		return key, nil
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, fmt.Errorf("none of the given identities is a recipient of it (recipients: %s)", strings.Join(f.recipients(), ", "))
}

func (f *sopsFile) recipients() []string {
	out := make([]string, len(f.ages))
	for i, s := range f.ages {
		out[i] = s.recipient
	}
	return out
}

// shouldEncrypt mirrors sops' rule for whether the value at path is
// encrypted (comment-based rules are refused when parsing).
func (f *sopsFile) shouldEncrypt(path []string) bool {
	encrypted := true
	if f.unencryptedSuffix != "" {
		for _, p := range path {
			if strings.HasSuffix(p, f.unencryptedSuffix) {
				encrypted = false
				break
			}
		}
	}
	if f.encryptedSuffix != "" {
		encrypted = false
		for _, p := range path {
			if strings.HasSuffix(p, f.encryptedSuffix) {
				encrypted = true
				break
			}
		}
	}
	if f.unencryptedRegex != nil {
		for _, p := range path {
			if f.unencryptedRegex.MatchString(p) {
				encrypted = false
				break
			}
		}
	}
	if f.encryptedRegex != nil {
		encrypted = false
		for _, p := range path {
			if f.encryptedRegex.MatchString(p) {
				encrypted = true
				break
			}
		}
	}
	return encrypted
}

// leafFunc receives each leaf value in document order: its path, whether
// it is encrypted, and its value as sops' YAML store decodes it.
type leafFunc func(path []string, encrypted bool, value any) error

// walk visits every leaf of the data (not the metadata) the way sops does:
// mapping values extend the path with their key, list items keep it, null
// values are skipped, aliases are followed.
func (f *sopsFile) walk(fn leafFunc) error {
	budget := maxNodes
	return f.walkNode(f.root, nil, fn, 0, &budget)
}

// Limits that keep a hostile file (deep nesting, alias fan-out) cheap.
const (
	maxDepth = 100
	maxNodes = 100000
)

func (f *sopsFile) walkNode(n *yaml.Node, path []string, fn leafFunc, depth int, budget *int) error {
	if depth > maxDepth {
		return errors.New("the data is nested too deeply")
	}
	if *budget--; *budget < 0 {
		return errors.New("the data has too many values")
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var key any
			if err := n.Content[i].Decode(&key); err != nil {
				return fmt.Errorf("key at %s: %w", pathString(path), err)
			}
			k, ok := key.(string)
			if !ok {
				return fmt.Errorf("key %v at %s is not a string", key, pathString(path))
			}
			p := append(append([]string(nil), path...), k)
			if err := f.walkNode(n.Content[i+1], p, fn, depth+1, budget); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if err := f.walkNode(item, path, fn, depth+1, budget); err != nil {
				return err
			}
		}
	case yaml.AliasNode:
		if n.Alias == nil {
			return fmt.Errorf("dangling alias at %s", pathString(path))
		}
		return f.walkNode(n.Alias, path, fn, depth+1, budget)
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("value at %s: %w", pathString(path), err)
		}
		if v == nil {
			return nil
		}
		return fn(path, f.shouldEncrypt(path), v)
	default:
		return fmt.Errorf("unexpected YAML node at %s", pathString(path))
	}
	return nil
}

func pathString(path []string) string {
	if len(path) == 0 {
		return "the top level"
	}
	return strings.Join(path, ":")
}

// additionalData is the AES-GCM additional data sops binds a value to.
func additionalData(path []string) string {
	return strings.Join(path, ":") + ":"
}

// decryptedLeaf is a value opened from the file.
type decryptedLeaf struct {
	text    string // the value as a user reads it
	macData []byte // what sops feeds to the MAC (nil for comments)
}

// decryptTree opens every value, checks the MAC and returns the top-level
// scalar values by key.
func (f *sopsFile) decryptTree(key []byte) (map[string]string, error) {
	hash := sha512.New()
	if f.macOnlyEncrypted {
		hash.Write(macOnlyEncryptedInit)
	}
	top := make(map[string]string)
	err := f.walk(func(path []string, encrypted bool, v any) error {
		var leaf decryptedLeaf
		if encrypted {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("value at %s is not encrypted", pathString(path))
			}
			var err error
			if leaf, err = decryptValue(s, key, additionalData(path)); err != nil {
				return fmt.Errorf("value at %s: %w", pathString(path), err)
			}
		} else {
			b, err := plainMACBytes(v)
			if err != nil {
				return fmt.Errorf("value at %s: %w", pathString(path), err)
			}
			leaf = decryptedLeaf{text: string(b), macData: b}
			if s, ok := v.(string); ok {
				leaf.text = s
			}
		}
		if leaf.macData != nil && (!f.macOnlyEncrypted || encrypted) {
			hash.Write(leaf.macData)
		}
		if len(path) == 1 && leaf.macData != nil {
			top[path[0]] = leaf.text
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	stored, err := decryptValue(f.mac, key, f.macAD())
	if err != nil {
		return nil, fmt.Errorf("MAC: %w", err)
	}
	if stored.text != fmt.Sprintf("%X", hash.Sum(nil)) {
		return nil, errors.New("MAC mismatch: the file was changed without its data key")
	}
	return top, nil
}

// macAD is the additional data of the MAC: lastmodified as sops re-formats
// it after parsing.
func (f *sopsFile) macAD() string {
	t, err := time.Parse(time.RFC3339, f.lastModified)
	if err != nil {
		return f.lastModified
	}
	return t.Format(time.RFC3339)
}

// decryptValue opens one ENC[AES256_GCM,…] value.
func decryptValue(s string, key []byte, ad string) (decryptedLeaf, error) {
	if s == "" {
		// sops leaves empty strings unencrypted.
		return decryptedLeaf{text: "", macData: []byte{}}, nil
	}
	m := encValueRE.FindStringSubmatch(s)
	if m == nil {
		return decryptedLeaf{}, errors.New("not a sops-encrypted value")
	}
	data, err1 := base64.StdEncoding.DecodeString(m[1])
	iv, err2 := base64.StdEncoding.DecodeString(m[2])
	tag, err3 := base64.StdEncoding.DecodeString(m[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		return decryptedLeaf{}, errors.New("encrypted value is not valid base64")
	}
	if len(iv) == 0 || len(tag) != 16 {
		return decryptedLeaf{}, errors.New("encrypted value has a malformed IV or tag")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return decryptedLeaf{}, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return decryptedLeaf{}, err
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(ad))
	if err != nil {
		return decryptedLeaf{}, errors.New("cannot decrypt it with the data key (changed or moved value?)")
	}
	text := string(plain)
	switch m[4] {
	case "str", "bytes":
		return decryptedLeaf{text: text, macData: plain}, nil
	case "int":
		n, err := strconv.Atoi(text)
		if err != nil {
			return decryptedLeaf{}, errors.New("encrypted int is not a number")
		}
		return decryptedLeaf{text: text, macData: []byte(strconv.Itoa(n))}, nil
	case "float":
		x, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return decryptedLeaf{}, errors.New("encrypted float is not a number")
		}
		return decryptedLeaf{text: text, macData: []byte(strconv.FormatFloat(x, 'f', -1, 64))}, nil
	case "bool":
		b, err := strconv.ParseBool(text)
		if err != nil {
			return decryptedLeaf{}, errors.New("encrypted bool is not true or false")
		}
		return decryptedLeaf{text: strconv.FormatBool(b), macData: titleBool(b)}, nil
	case "time":
		var t time.Time
		if err := t.UnmarshalText(plain); err != nil {
			return decryptedLeaf{}, errors.New("encrypted time is not RFC 3339")
		}
		b, _ := t.MarshalText()
		return decryptedLeaf{text: text, macData: b}, nil
	case "comment":
		return decryptedLeaf{text: text}, nil
	default:
		return decryptedLeaf{}, fmt.Errorf("unknown value type %q", m[4])
	}
}

// plainMACBytes is sops' ToBytes for a value left unencrypted.
func plainMACBytes(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case int:
		return []byte(strconv.Itoa(v)), nil
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64)), nil
	case bool:
		return titleBool(v), nil
	case time.Time:
		return v.MarshalText()
	default:
		return nil, fmt.Errorf("values of type %T are not supported by sops", v)
	}
}

// titleBool is how sops writes booleans into the MAC (a Python heritage).
func titleBool(b bool) []byte {
	if b {
		return []byte("True")
	}
	return []byte("False")
}

// encryptString encrypts a string value the way sops does, with a fresh IV.
func encryptString(plain string, key []byte, ad string) (string, error) {
	if plain == "" {
		return "", nil
	}
	return encryptBytes([]byte(plain), "str", key, ad)
}

func encryptBytes(plain []byte, typ string, key []byte, ad string) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, sopsIVSize)
	if err != nil {
		return "", err
	}
	iv := make([]byte, sopsIVSize)
	if _, err := rand.Read(iv); err != nil {
		return "", fmt.Errorf("random IV: %w", err)
	}
	out := gcm.Seal(nil, iv, plain, []byte(ad))
	n := len(out) - gcm.Overhead()
	return fmt.Sprintf("ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]",
		base64.StdEncoding.EncodeToString(out[:n]),
		base64.StdEncoding.EncodeToString(iv),
		base64.StdEncoding.EncodeToString(out[n:]),
		typ), nil
}

// encryptDataKey age-encrypts (armored) the data key to one recipient.
func encryptDataKey(key []byte, recipient string) (string, error) {
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		return "", fmt.Errorf("recipient %s: %w", recipient, err)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return "", fmt.Errorf("encrypt data key to %s: %w", recipient, err)
	}
	if _, err := w.Write(key); err != nil {
		return "", fmt.Errorf("encrypt data key to %s: %w", recipient, err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("encrypt data key to %s: %w", recipient, err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("encrypt data key to %s: %w", recipient, err)
	}
	return buf.String(), nil
}

// computeMAC is the MAC of the data as it stands, given its data key; it
// re-opens every encrypted value (new ones included).
func (f *sopsFile) computeMAC(key []byte) (string, error) {
	hash := sha512.New()
	if f.macOnlyEncrypted {
		hash.Write(macOnlyEncryptedInit)
	}
	err := f.walk(func(path []string, encrypted bool, v any) error {
		var data []byte
		if encrypted {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("value at %s is not encrypted", pathString(path))
			}
			leaf, err := decryptValue(s, key, additionalData(path))
			if err != nil {
				return fmt.Errorf("value at %s: %w", pathString(path), err)
			}
			data = leaf.macData
		} else {
			b, err := plainMACBytes(v)
			if err != nil {
				return fmt.Errorf("value at %s: %w", pathString(path), err)
			}
			data = b
		}
		if data != nil && (!f.macOnlyEncrypted || encrypted) {
			hash.Write(data)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%X", hash.Sum(nil)), nil
}

// encode writes the file back: the data as parsed (plus additions) and the
// metadata in the order sops writes it, with four-space indentation.
func (f *sopsFile) encode() ([]byte, error) {
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	}
	meta := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { meta.Content = append(meta.Content, str(k), v) }

	ages := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range f.ages {
		enc := str(s.enc)
		enc.Style = yaml.LiteralStyle
		ages.Content = append(ages.Content, &yaml.Node{Kind: yaml.MappingNode,
			Content: []*yaml.Node{str("recipient"), str(s.recipient), str("enc"), enc}})
	}
	// sops sorts its metadata keys.
	add("age", ages)
	add("lastmodified", str(f.lastModified))
	add("mac", str(f.mac))
	if f.macOnlyEncrypted {
		add("mac_only_encrypted", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	}
	rules := f.rawRules
	if len(rules) == 0 {
		rules = [][2]string{{"unencrypted_suffix", f.unencryptedSuffix}}
	}
	for _, r := range rules {
		// Sorted already: only one rule is ever present.
		add(r[0], str(r[1]))
	}
	add("version", str(f.version))

	root := &yaml.Node{Kind: yaml.MappingNode, Style: f.root.Style &^ yaml.FlowStyle,
		HeadComment: f.root.HeadComment, LineComment: f.root.LineComment, FootComment: f.root.FootComment}
	root.Content = append(append(root.Content, f.root.Content...), str(sopsKey), meta)
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: f.doc.HeadComment, FootComment: f.doc.FootComment,
		Content: []*yaml.Node{root}}

	var buf bytes.Buffer
	e := yaml.NewEncoder(&buf)
	e.SetIndent(4)
	if err := e.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := e.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return buf.Bytes(), nil
}
