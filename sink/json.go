package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrBadJSON is returned by GetJSON for an object that is not the JSON it
// should be: reading it again cannot help.
var ErrBadJSON = errors.New("not valid JSON")

// GetJSON decodes the object under key into v. It returns false, and no
// error, when there is no such object; an object that does not decode
// gives an error wrapping ErrBadJSON.
func GetJSON(ctx context.Context, s Store, key string, v any) (bool, error) {
	r, err := s.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: %w: %w", key, ErrBadJSON, err)
	}
	return true, nil
}

// MarshalJSON is the JSON of v as the tool writes its objects: indented,
// with a final newline.
func MarshalJSON(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

// PutJSON writes v under key as MarshalJSON encodes it.
func PutJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := MarshalJSON(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := s.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}
