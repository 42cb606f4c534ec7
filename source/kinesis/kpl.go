package kinesis

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// kplMagic starts a record the Kinesis Producer Library aggregated: the
// magic, a protobuf AggregatedRecord, and the MD5 of the protobuf bytes.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// subRecord is one user record of an aggregated Kinesis record.
type subRecord struct {
	key  string
	data []byte
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
func deaggregate(data []byte) (recs []subRecord, ok bool, err error) {
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
		recs = append(recs, subRecord{key: keys[r.keyIndex], data: r.data})
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
