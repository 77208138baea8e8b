package api

import (
	"bytes"
	"encoding/json"
)

// redactNetworks removes from a stored scorecard every object that names
// another network than own (e.g. the peers a scorecard compares with), at
// any depth: an operator sees its own scorecard and peer aggregates
// (medians, quantiles) but no other network's details. Generic on purpose,
// so fields the scorecard service adds later are covered too.
func redactNetworks(raw json.RawMessage, own string) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage("null")
	}
	out, err := json.Marshal(prune(v, own))
	if err != nil {
		return json.RawMessage("null")
	}
	return out
}

func foreign(v any, own string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	n, ok := m["network"].(string)
	return ok && n != own
}

func prune(v any, own string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if foreign(e, own) {
				delete(x, k)
				continue
			}
			x[k] = prune(e, own)
		}
		return x
	case []any:
		kept := x[:0]
		for _, e := range x {
			if !foreign(e, own) {
				kept = append(kept, prune(e, own))
			}
		}
		return kept
	}
	return v
}
