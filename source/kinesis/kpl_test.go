package kinesis

import (
	"crypto/md5"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// Aggregate builds a KPL-aggregated record of the user records (key, data),
// as the Kinesis Producer Library writes it.
func Aggregate(keys []string, data [][]byte) []byte {
	var body []byte
	index := map[string]uint64{}
	var table []string
	for _, k := range keys {
		if _, ok := index[k]; !ok {
			index[k] = uint64(len(table))
			table = append(table, k)
		}
	}
	for _, k := range table {
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendString(body, k)
	}
	for i, d := range data {
		var rec []byte
		rec = protowire.AppendTag(rec, 1, protowire.VarintType)
		rec = protowire.AppendVarint(rec, index[keys[i]])
		rec = protowire.AppendTag(rec, 3, protowire.BytesType)
		rec = protowire.AppendBytes(rec, d)
		body = protowire.AppendTag(body, 3, protowire.BytesType)
		body = protowire.AppendBytes(body, rec)
	}
	sum := md5.Sum(body)
	return append(append(append([]byte{}, kplMagic...), body...), sum[:]...)
}

func TestDeaggregate(t *testing.T) {
	agg := Aggregate([]string{"k1", "k2", "k1"}, [][]byte{[]byte(`{"a":1}`), []byte("two"), []byte("\x00three")})
	recs, ok, err := deaggregate(agg)
	if err != nil || !ok || len(recs) != 3 || recs[0].key != "k1" || recs[1].key != "k2" || recs[2].key != "k1" ||
		string(recs[0].data) != `{"a":1}` || string(recs[2].data) != "\x00three" {
		t.Fatalf("%+v %v %v", recs, ok, err)
	}
	// Not an aggregate: plain data, and the magic with a bad checksum.
	for _, d := range [][]byte{[]byte(`{"ops":[]}`), append(append([]byte{}, agg[:len(agg)-1]...), agg[len(agg)-1]^1)} {
		if _, ok, err := deaggregate(d); ok || err != nil {
			t.Fatalf("%q taken as an aggregate (%v)", d, err)
		}
	}
	// A record pointing past the key table.
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendString(body, "k")
	var rec []byte
	rec = protowire.AppendTag(rec, 1, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 5)
	rec = protowire.AppendTag(rec, 3, protowire.BytesType)
	rec = protowire.AppendBytes(rec, []byte("x"))
	body = protowire.AppendTag(body, 3, protowire.BytesType)
	body = protowire.AppendBytes(body, rec)
	sum := md5.Sum(body)
	bad := append(append(append([]byte{}, kplMagic...), body...), sum[:]...)
	if _, ok, err := deaggregate(bad); !ok || err == nil || !strings.Contains(err.Error(), "partition key index 5 of 1") {
		t.Fatalf("bad index: %v %v", ok, err)
	}
}
