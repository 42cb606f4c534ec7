package kpl

import (
	"crypto/md5"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestDeaggregate(t *testing.T) {
	agg := Aggregate([]string{"k1", "k2", "k1"}, [][]byte{[]byte(`{"a":1}`), []byte("two"), []byte("\x00three")})
	recs, ok, err := deaggregate(agg)
	if err != nil || !ok || len(recs) != 3 || recs[0].Key != "k1" || recs[1].Key != "k2" || recs[2].Key != "k1" ||
		string(recs[0].Data) != `{"a":1}` || string(recs[2].Data) != "\x00three" {
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

// Split names each user record of an aggregate SEQ/N, and a plain record
// (or an aggregate that does not decode) by its sequence number, whole.
func TestSplit(t *testing.T) {
	agg := Aggregate([]string{"a", "b"}, [][]byte{[]byte("1"), []byte("2")})
	recs, err := Split(agg, "outer", "49500")
	if err != nil || len(recs) != 2 || recs[0].Ref != "49500/0" || recs[1].Ref != "49500/1" || recs[1].Key != "b" || string(recs[1].Data) != "2" {
		t.Fatalf("aggregate: %+v %v", recs, err)
	}
	recs, err = Split([]byte(`{"ops":[]}`), "k", "49501")
	if err != nil || len(recs) != 1 || recs[0].Ref != "49501" || recs[0].Key != "k" || string(recs[0].Data) != `{"ops":[]}` {
		t.Fatalf("plain: %+v %v", recs, err)
	}
	bad := append([]byte{}, kplMagic...)
	bad = append(bad, 0x1a, 0x02, 0x08, 0x05) // a record naming key 5 of none
	sum := md5.Sum(bad[len(kplMagic):])
	bad = append(bad, sum[:]...)
	recs, err = Split(bad, "k", "49502")
	if err == nil || len(recs) != 1 || recs[0].Ref != "49502" || len(recs[0].Data) != len(bad) {
		t.Fatalf("bad aggregate: %+v %v", recs, err)
	}
}
