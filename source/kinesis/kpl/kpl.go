// Package kpl splits the records the Kinesis Producer Library aggregated
// into their user records, as the Kinesis Client Library does. The Kinesis
// source and the Lambda handler both read records through Split.
package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// kplMagic starts a record the Kinesis Producer Library aggregated: the
// magic, a protobuf AggregatedRecord, and the MD5 of the protobuf bytes.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// Record is one user record of a Kinesis record.
type Record struct {
	Key  string
	Data []byte
	// Ref names the user record in the stream: the Kinesis record's
	// sequence number, and for a user record of an aggregate "/N" after it,
	// N its index in the aggregate (the KCL's sub-sequence number).
	Ref string
}

// Split returns the user records of the Kinesis record (data, partition
// key, sequence number): an aggregate's user records, or the record itself.
// An aggregate that does not decode is returned whole, as one record, with
// the error (the record will then be dead-lettered, not lost).
func Split(data []byte, key, seq string) ([]Record, error) {
	subs, agg, err := deaggregate(data)
	if !agg || err != nil {
		return []Record{{Key: key, Data: data, Ref: seq}}, err
	}
	for i := range subs {
		subs[i].Ref = seq + "/" + strconv.Itoa(i)
	}
	return subs, nil
}

// Aggregate builds a KPL-aggregated record of the user records (keys[i],
// data[i]), as the Kinesis Producer Library writes it: for tests and tools
// that must produce what the KPL produces.
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

// deaggregate returns the user records of a KPL-aggregated record, or
// ok=false when data is not one (it is then a record of its own). A record
// with the magic but a bad checksum is not an aggregate either, as the KCL
// decides.
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
func deaggregate(data []byte) (recs []Record, ok bool, err error) {
	if len(data) < len(kplMagic)+md5.Size || !bytes.Equal(data[:len(kplMagic)], kplMagic) {
		return nil, false, nil
	}
	body := data[len(kplMagic) : len(data)-md5.Size]
	sum := md5.Sum(body)
	if !bytes.Equal(sum[:], data[len(data)-md5.Size:]) {
		return nil, false, nil
	}
	var keys []string
	type raw struct {
		keyIndex uint64
		data     []byte
	}
	var raws []raw
	err = fields(body, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			keys = append(keys, string(v))
		case num == 3 && typ == protowire.BytesType:
			var r raw
			hasData := false
			if err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				switch {
				case num == 1 && typ == protowire.VarintType:
					n, _ := protowire.ConsumeVarint(v)
					r.keyIndex = n
				case num == 3 && typ == protowire.BytesType:
					r.data, hasData = v, true
				}
				return nil
			}); err != nil {
				return err
			}
			if !hasData {
				return errors.New("a record without data")
			}
			raws = append(raws, r)
		}
		return nil
	})
	if err != nil {
		return nil, true, fmt.Errorf("KPL aggregate: %w", err)
	}
	for _, r := range raws {
		if r.keyIndex >= uint64(len(keys)) {
			return nil, true, fmt.Errorf("KPL aggregate: partition key index %d of %d", r.keyIndex, len(keys))
		}
		recs = append(recs, Record{Key: keys[r.keyIndex], Data: r.data})
	}
	return recs, true, nil
}

// fields calls fn with each field of a protobuf message: its number, type
// and value (a varint's bytes, or a length-delimited field's contents).
func fields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			val, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = val, m
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = b[:m], m
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
