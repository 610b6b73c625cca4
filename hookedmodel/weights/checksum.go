package weights

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
)

// ChecksumKey is the header metadata key under which WriteSafetensors
// records a CRC-32C of each tensor's bytes and of the rest of the
// metadata, as a JSON object {name: "%08x", ...} with metadataChecksum for
// the metadata. A reader checks each tensor as it reads it and the
// metadata at open, so a flipped bit in a golens checkpoint is an error
// naming what it hit rather than a silently different model. Files
// without the key (those other programs write) are read unchecked.
const ChecksumKey = "golens_crc32c"

// metadataChecksum names the metadata's own sum among the tensors' sums;
// "__metadata__" is reserved in safetensors, so no tensor has that name.
const metadataChecksum = "__metadata__"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// metadataCRC sums the metadata but its checksum entry, in key order.
func metadataCRC(meta map[string]string) uint32 {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if k != ChecksumKey {
			fmt.Fprintf(&b, "%q:%q\n", k, meta[k])
		}
	}
	return crc([]byte(b.String()))
}

// withChecksums returns metadata with the checksums of tensors and of
// itself added (a copy: the caller's map is left as it was).
func withChecksums(metadata map[string]string, tensors []*Tensor) (map[string]string, error) {
	meta := maps.Clone(metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	delete(meta, ChecksumKey)
	sums := map[string]string{metadataChecksum: fmt.Sprintf("%08x", metadataCRC(meta))}
	for _, t := range tensors {
		sums[t.Name] = fmt.Sprintf("%08x", crc(t.Data))
	}
	js, err := json.Marshal(sums)
	if err != nil {
		return nil, err
	}
	meta[ChecksumKey] = string(js)
	return meta, nil
}

// checksums parses a header's checksums and checks the metadata's; it
// returns each tensor's expected sum (none for a file without them).
func checksums(meta map[string]string) (map[string]uint32, error) {
	js, ok := meta[ChecksumKey]
	if !ok {
		return nil, nil
	}
	var hex map[string]string
	if err := json.Unmarshal([]byte(js), &hex); err != nil {
		return nil, fmt.Errorf("metadata %s: %w (the header is damaged)", ChecksumKey, err)
	}
	sums := map[string]uint32{}
	for name, h := range hex {
		var v uint32
		if _, err := fmt.Sscanf(h, "%08x", &v); err != nil || len(h) != 8 {
			return nil, fmt.Errorf("metadata %s: %q for %q is not 8 hex digits (the header is damaged)", ChecksumKey, h, name)
		}
		sums[name] = v
	}
	want, ok := sums[metadataChecksum]
	if !ok {
		return nil, fmt.Errorf("metadata %s: no sum for the metadata (the header is damaged)", ChecksumKey)
	}
	if got := metadataCRC(meta); got != want {
		return nil, fmt.Errorf("the header metadata fails its checksum (crc32c %08x, recorded %08x): the file is damaged", got, want)
	}
	delete(sums, metadataChecksum)
	return sums, nil
}

// check compares got, the CRC-32C of e's bytes, with its recorded sum.
func (e *entry) check(got uint32) error {
	if e.sum != nil && got != *e.sum {
		return fmt.Errorf("the data fails its checksum (crc32c %08x, recorded %08x): the file is damaged", got, *e.sum)
	}
	return nil
}
