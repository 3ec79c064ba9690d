package snapshot

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/source"
)

func TestChunkSplitBlocks(t *testing.T) {
	const block = 8192
	tests := []struct {
		name                 string
		pages, bytes, target int64
		want                 []blockRange
	}{
		{"empty", 0, 0, 64 << 20, []blockRange{{0, 0}}},
		{"one block", 1, block, 1, []blockRange{{0, 0}}},
		{"smaller than a chunk", 100, 100 * block, 64 << 20, []blockRange{{0, 0}}},
		{"exactly one chunk", 8192, 8192 * block, 64 << 20, []blockRange{{0, 0}}},
		{"no splitting", 1000, 1000 * block, 0, []blockRange{{0, 0}}},
		{"even", 100, 100 * block, 25 * block, []blockRange{{0, 25}, {25, 50}, {50, 75}, {75, 0}}},
		{"remainder", 10, 10 * block, 4 * block, []blockRange{{0, 4}, {4, 8}, {8, 0}}},
		// Half of the bytes are TOAST: half as many blocks per chunk.
		{"toast", 100, 200 * block, 50 * block, []blockRange{{0, 25}, {25, 50}, {50, 75}, {75, 0}}},
		// A block larger than the target is one chunk per block.
		{"huge rows", 3, 30 * block, block, []blockRange{{0, 1}, {1, 2}, {2, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitBlocks(tt.pages, tt.bytes, tt.target)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitBlocks(%d, %d, %d) = %v, want %v", tt.pages, tt.bytes, tt.target, got, tt.want)
			}
		})
	}
}

// TestChunkRangesCover checks that the ranges of any split are contiguous
// from block 0, and open at the end, so every row is read exactly once.
func TestChunkRangesCover(t *testing.T) {
	for pages := int64(0); pages < 300; pages += 7 {
		for _, target := range []int64{1, 8192, 3 * 8192, 64 << 20} {
			rs := splitBlocks(pages, pages*8192, target)
			if rs[0].Start != 0 || rs[len(rs)-1].End != 0 {
				t.Fatalf("pages %d target %d: %v does not start at 0 and end open", pages, target, rs)
			}
			for i := 1; i < len(rs); i++ {
				if rs[i].Start != rs[i-1].End || rs[i].Start <= rs[i-1].Start {
					t.Fatalf("pages %d target %d: %v is not contiguous", pages, target, rs)
				}
			}
		}
	}
}

func TestChunkWhere(t *testing.T) {
	for _, tt := range []struct {
		r    blockRange
		want string
	}{
		{blockRange{0, 0}, ""},
		{blockRange{0, 10}, "ctid < '(10,0)'::tid"},
		{blockRange{10, 20}, "ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid"},
		{blockRange{20, 0}, "ctid >= '(20,0)'::tid"},
	} {
		if got := tt.r.where(); got != tt.want {
			t.Errorf("%v.where() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestChunkPlan(t *testing.T) {
	jobs := []Job{
		{Table: source.Table{Schema: "public", Name: "big"}},
		{Table: source.Table{Schema: "public", Name: "parted", Partitioned: true}},
		{Table: source.Table{Schema: "public", Name: "no partitions", Partitioned: true}},
		{Table: source.Table{Schema: "public", Name: "old server"}},
		{Table: source.Table{Schema: "public", Name: "many", Partitioned: true}},
	}
	heap := func(name string, pages int64) relation {
		return relation{Schema: "public", Name: name, Pages: pages, Bytes: pages * 8192, Heap: true, Splittable: true}
	}
	var many []relation
	for i := range 5 {
		many = append(many, heap(fmt.Sprint("m", i), 10))
	}
	rels := [][]relation{
		{heap("big", 100)},
		{heap("parted_1", 50), heap("parted_2", 10), {Schema: "public", Name: "parted_remote"}, heap("parted_3", 0)},
		nil,
		{{Schema: "public", Name: "old server", Pages: 1000, Bytes: 1000 * 8192, Heap: true}},
		many,
	}
	tables, chunks, err := planChunks(jobs, rels, 25*8192)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(chunks []*chunk) []string {
		var out []string
		for _, c := range chunks {
			var parts []string
			for _, p := range c.parts {
				parts = append(parts, p.rel.Name+"["+p.rng.String()+"]")
			}
			out = append(out, fmt.Sprintf("%s#%d:%s", c.table.job.Table.Name, c.seq, strings.Join(parts, ",")))
		}
		return out
	}
	want := []string{
		"big#1:big[0-25]", "big#2:big[25-50]", "big#3:big[50-75]", "big#4:big[75-]",
		"parted#1:parted_1[0-25]", "parted#2:parted_1[25-]", "parted#3:parted_remote[0-]",
		"parted#4:parted_2[0-],parted_3[0-]",
		"no partitions#1:",
		"old server#1:old server[0-]",
		"many#1:m0[0-],m1[0-]", "many#2:m2[0-],m3[0-]", "many#3:m4[0-]",
	}
	if got := describe(chunks); !reflect.DeepEqual(got, want) {
		t.Errorf("chunks:\n got %q\nwant %q", got, want)
	}
	for i, n := range []int{4, 4, 1, 1, 3} {
		if tables[i].remaining != n || tables[i].prog.chunks != int64(n) {
			t.Errorf("%s: %d chunks remaining, progress %d, want %d", tables[i].job.Table, tables[i].remaining, tables[i].prog.chunks, n)
		}
	}
	var disk int64
	for _, c := range chunks[:4] {
		disk += c.disk
	}
	if disk != 100*8192 || tables[0].prog.disk != disk {
		t.Errorf("chunks of big plan %d disk bytes, table %d, want %d", disk, tables[0].prog.disk, 100*8192)
	}

	// Without splitting, one chunk per relation.
	_, chunks, _ = planChunks(jobs, rels, -1)
	want = []string{
		"big#1:big[0-]", "parted#1:parted_1[0-]", "parted#2:parted_2[0-]", "parted#3:parted_remote[0-]",
		"parted#4:parted_3[0-]", "no partitions#1:", "old server#1:old server[0-]",
		"many#1:m0[0-]", "many#2:m1[0-]", "many#3:m2[0-]", "many#4:m3[0-]", "many#5:m4[0-]",
	}
	if got := describe(chunks); !reflect.DeepEqual(got, want) {
		t.Errorf("unsplit chunks:\n got %q\nwant %q", got, want)
	}
}

func TestChunkSelectQuery(t *testing.T) {
	job := Job{Table: source.Table{Schema: "My Schema", Name: `odd"name`}}
	rel := &relation{Schema: "My Schema", Name: `odd"name%/1`}
	got := selectQuery(job, rel, blockRange{3, 9})
	want := `SELECT 1 FROM ONLY "My Schema"."odd""name%/1" WHERE ctid >= '(3,0)'::tid AND ctid < '(9,0)'::tid`
	if got != want {
		t.Errorf("selectQuery = %s\nwant %s", got, want)
	}
}
