package pqfile_test

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// benchCols is the six-column table of make bench (issues 4 and 5).
var benchCols = []pqfile.Column{
	{Name: "id", Type: pqfile.Type{Kind: pqfile.Int64}},
	{Name: "name", Type: pqfile.Type{Kind: pqfile.String}},
	{Name: "created_at", Type: pqfile.Type{Kind: pqfile.TimestampTZ}},
	{Name: "amount", Type: pqfile.DecimalType(12, 2)},
	{Name: "attrs", Type: pqfile.Type{Kind: pqfile.String}},
	{Name: "qty", Type: pqfile.Type{Kind: pqfile.Int32}},
}

// benchRows returns n rows as make bench's generator makes them (bench/pg.go).
func benchRows(n int) [][][]byte {
	rows := make([][][]byte, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	colors := []string{"red", "green", "blue", "black"}
	for i := range rows {
		g := i + 1
		rows[i] = [][]byte{
			[]byte(strconv.Itoa(g)),
			[]byte(fmt.Sprintf("item %d %x", g, md5.Sum([]byte(strconv.Itoa(g))))),
			[]byte(base.Add(time.Duration(g)*time.Second).Format("2006-01-02 15:04:05") + "+00"),
			[]byte(fmt.Sprintf("%d.%02d", g%100000/100, g%100)),
			[]byte(fmt.Sprintf(`{"size": %d, "tags": ["a", %d], "color": "%s"}`, g%50, g%7, colors[g%4])),
			[]byte(strconv.Itoa(g % 1000)),
		}
	}
	return rows
}

// BenchmarkWriter measures writing rows of the bench table, the per-row cost
// of both the full load and the change stream.
func BenchmarkWriter(b *testing.B) {
	for _, comp := range []string{"zstd", "none"} {
		b.Run(comp, func(b *testing.B) {
			benchWrite(b, benchRows(1<<17), pqfile.Options{Compression: comp})
		})
	}
}

// benchWrite writes b.N rows taken in turn from rows, and reports the CPU
// time and the file bytes per row.
func benchWrite(b *testing.B, rows [][][]byte, o pqfile.Options) {
	var out countWriter
	w, err := pqfile.NewWriter(&out, benchCols, o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		m := pqfile.Meta{Op: 'I', CommitTime: 1, LSN: 100, Seq: uint64(i)}
		if err := w.Write(m, rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/row")
	b.ReportMetric(float64(out)/float64(b.N), "file-B/row")
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countWriter counts and discards what is written.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// BenchmarkZstdLevel writes the bench table's rows at each zstd level: the
// time per row and the bytes per row it costs (docs/benchmarks.md, "zstd
// level").
func BenchmarkZstdLevel(b *testing.B) {
	for _, l := range []struct {
		name  string
		level zstd.Level
	}{{"fastest", zstd.SpeedFastest}, {"default", zstd.SpeedDefault}, {"better", zstd.SpeedBetterCompression}, {"best", zstd.SpeedBestCompression}} {
		b.Run(l.name, func(b *testing.B) {
			benchWrite(b, benchRows(1<<17), pqfile.Options{Compression: pqfile.CompressionZstd, ZstdLevel: l.level})
		})
	}
}

// benchFormats are the formats of benchCols in the snapshot's binary COPY:
// attrs (jsonb) comes as its output text.
var benchFormats = []pqfile.Format{pqfile.FormatBinary, pqfile.FormatBinary, pqfile.FormatBinary, pqfile.FormatBinary, pqfile.FormatText, pqfile.FormatBinary}

// benchRowsBinary returns benchRows(n) as the binary COPY sends them.
func benchRowsBinary(n int) [][][]byte {
	rows := benchRows(n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	pgEpoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, r := range rows {
		g := i + 1
		ts := base.Add(time.Duration(g) * time.Second).Sub(pgEpoch).Microseconds()
		r[0] = binary.BigEndian.AppendUint64(nil, uint64(g))
		r[2] = binary.BigEndian.AppendUint64(nil, uint64(ts))
		r[3] = numericBinary(int64(g%100000/100), int64(g%100))
		r[5] = binary.BigEndian.AppendUint32(nil, uint32(g%1000))
	}
	return rows
}

// numericBinary encodes the non-negative numeric whole.frac (two decimals,
// whole below 10^8) as numeric_send does.
func numericBinary(whole, frac int64) []byte {
	var digits []uint16
	weight := -1
	if whole >= 10000 {
		digits, weight = append(digits, uint16(whole/10000), uint16(whole%10000)), 1
	} else if whole > 0 {
		digits, weight = append(digits, uint16(whole)), 0
	}
	if frac > 0 {
		digits = append(digits, uint16(frac*100))
	} else if len(digits) == 0 {
		weight = 0
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, 2)
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

// BenchmarkWriterBinary is BenchmarkWriter with the values in the binary
// COPY's formats, the full load's path.
func BenchmarkWriterBinary(b *testing.B) {
	benchWrite(b, benchRowsBinary(1<<17), pqfile.Options{Formats: benchFormats})
}

// BenchmarkLargeValue writes one row of a 100 MiB BINARY value between two
// NULL rows, as the full load gets it (binary COPY, a temp dir for pages),
// for the copies it makes: run with -benchtime 1x -memprofile and read the
// profile's alloc_space (docs/benchmarks.md, "One large value").
func BenchmarkLargeValue(b *testing.B) {
	v := make([]byte, 100<<20)
	for i := range v {
		v[i] = byte(i * 7919 >> 3)
	}
	cols := []pqfile.Column{{Name: "id", Type: pqfile.Type{Kind: pqfile.Int32}}, {Name: "v", Type: pqfile.Type{Kind: pqfile.Bytes}}}
	o := pqfile.Options{Formats: []pqfile.Format{pqfile.FormatBinary, pqfile.FormatBinary}, TempDir: b.TempDir()}
	b.ReportAllocs()
	for b.Loop() {
		var out countWriter
		w, err := pqfile.NewWriter(&out, cols, o)
		if err != nil {
			b.Fatal(err)
		}
		for i, val := range [][]byte{nil, v, nil} {
			if err := w.Write(pqfile.Meta{Op: 'I'}, [][]byte{binary.BigEndian.AppendUint32(nil, uint32(i)), val}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
