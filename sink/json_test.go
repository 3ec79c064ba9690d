package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// mapStore is a Store of objects in a map, for the helpers' tests; fail,
// when set, is what every Get returns.
type mapStore struct {
	objs map[string][]byte
	fail error
}

func (m *mapStore) Put(_ context.Context, key string, r io.Reader, _ int64) error {
	b, err := io.ReadAll(r)
	m.objs[key] = b
	return err
}
func (m *mapStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, n int64) error {
	return m.Put(ctx, key, r, n)
}
func (m *mapStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	b, ok := m.objs[key]
	if !ok {
		return nil, ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
func (m *mapStore) List(context.Context, string) ([]ObjectInfo, error) { return nil, nil }
func (m *mapStore) Delete(_ context.Context, key string) error         { delete(m.objs, key); return nil }
func (m *mapStore) String() string                                     { return "map" }

// TestJSON checks the three outcomes of GetJSON a caller must tell apart:
// no object, an object that is not JSON (reading it again cannot help:
// ErrBadJSON), and a failed read (it may: not ErrBadJSON), and that
// PutJSON's objects read back.
func TestJSON(t *testing.T) {
	ctx := context.Background()
	s := &mapStore{objs: map[string][]byte{"bad": []byte("{not json")}}
	var v struct{ A int }
	if ok, err := GetJSON(ctx, s, "none", &v); ok || err != nil {
		t.Errorf("missing object: %v, %v", ok, err)
	}
	if _, err := GetJSON(ctx, s, "bad", &v); !errors.Is(err, ErrBadJSON) {
		t.Errorf("bad object: %v, want ErrBadJSON", err)
	}
	if err := PutJSON(ctx, s, "good", struct{ A int }{7}); err != nil {
		t.Fatal(err)
	}
	if ok, err := GetJSON(ctx, s, "good", &v); !ok || err != nil || v.A != 7 {
		t.Errorf("good object: %v, %v, %+v", ok, err, v)
	}
	s.fail = errors.New("connection reset")
	if _, err := GetJSON(ctx, s, "good", &v); err == nil || errors.Is(err, ErrBadJSON) || errors.Is(err, ErrNotFound) {
		t.Errorf("failed read: %v, want an error that is neither ErrBadJSON nor ErrNotFound", err)
	}
}
