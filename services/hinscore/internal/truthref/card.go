package truthref

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// u64 reads a 64-bit integer that protojson writes as a string.
type u64 uint64

func (u *u64) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	*u = u64(n)
	return err
}

// The scorecard JSON (scorecard-json/2), the fields compared.
type (
	cardRate struct {
		Count       u64     `json:"count"`
		Total       u64     `json:"total"`
		Rate        float64 `json:"rate"`
		CiLow       float64 `json:"ci_low"`
		CiHigh      float64 `json:"ci_high"`
		SmallSample bool    `json:"small_sample"`
	}
	cardLatency struct {
		Count     u64      `json:"count"`
		P50       u64      `json:"p50_ms"`
		P90       u64      `json:"p90_ms"`
		P99       u64      `json:"p99_ms"`
		WithinSLA cardRate `json:"within_sla"`
	}
	cardRanking struct {
		PeerMedian     float64 `json:"peer_median"`
		Excess         float64 `json:"excess_events"`
		Flagged        bool    `json:"flagged"`
		FlaggedPeriods int     `json:"flagged_periods"`
		Consecutive    int     `json:"consecutive"`
		RepeatOffender bool    `json:"repeat_offender"`
		Priority       float64 `json:"priority"`
		Rank           int     `json:"rank"`
		Ranked         int     `json:"ranked"`
	}
	cardEntity struct {
		Level    string `json:"level"`
		ID       string `json:"id"`
		Requests u64    `json:"requests"`
		Outcomes []struct {
			Outcome string   `json:"outcome"`
			Rate    cardRate `json:"rate"`
		} `json:"outcomes"`
		TTF      cardLatency `json:"time_to_fulfil"`
		TTA      cardLatency `json:"time_to_acknowledge"`
		Suspect  cardRate    `json:"suspect"`
		Refusals []struct {
			Code       string   `json:"code"`
			Outcome    string   `json:"outcome"`
			Rate       cardRate `json:"rate"`
			PeerMedian float64  `json:"peer_median"`
			Overuse    bool     `json:"overuse"`
		} `json:"refusals"`
		Ranking cardRanking `json:"ranking"`
		Trend   []struct {
			Period   string   `json:"period"`
			Requests u64      `json:"requests"`
			Suspect  cardRate `json:"suspect"`
			Flagged  bool     `json:"flagged"`
		} `json:"trend"`
		Flags []struct {
			Kind          string `json:"kind"`
			ExceptionCode string `json:"exception_code"`
		} `json:"flags"`
	}
	card struct {
		cardEntity
		Network    string       `json:"network"`
		Period     string       `json:"period"`
		Responders []cardEntity `json:"responders"`
	}
)

// CompareCard compares one day scorecard's JSON (the network and every
// responder) with the reference figures, and returns every disagreement
// and the keys of the entities it compared. A float agrees within 1e-9.
func CompareCard(b []byte, ref map[Key]*Figures, p Params) (diffs []string, seen []Key, err error) {
	var c card
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, nil, fmt.Errorf("truthref: scorecard JSON: %w", err)
	}
	entities := append([]cardEntity{c.cardEntity}, c.Responders...)
	entities[0].Level, entities[0].ID = LevelNetwork, c.Network
	for _, e := range entities {
		k := Key{Period: c.Period, Level: e.Level, Network: c.Network, ID: e.ID}
		f := ref[k]
		if f == nil {
			diffs = append(diffs, fmt.Sprintf("%s: on the card, not in the truth", keyString(k)))
			continue
		}
		seen = append(seen, k)
		c := comparer{at: keyString(k)}
		c.entity(e, f, p)
		c.trend(e, k, ref, p)
		diffs = append(diffs, c.diffs...)
	}
	return diffs, seen, nil
}

func keyString(k Key) string { return k.Period + " " + k.Level + " " + k.Network + "/" + k.ID }

type comparer struct {
	at    string
	diffs []string
}

func (c *comparer) eq(field string, got, want any) {
	g, gok := got.(float64)
	w, wok := want.(float64)
	if gok && wok {
		if math.Abs(g-w) > 1e-9 {
			c.diffs = append(c.diffs, fmt.Sprintf("%s: %s %v, reference %v", c.at, field, g, w))
		}
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		c.diffs = append(c.diffs, fmt.Sprintf("%s: %s %v, reference %v", c.at, field, got, want))
	}
}

func (c *comparer) rate(field string, got cardRate, want Rate) {
	c.eq(field+".count", uint64(got.Count), want.Count)
	c.eq(field+".total", uint64(got.Total), want.Total)
	c.eq(field+".rate", got.Rate, want.Rate)
	c.eq(field+".ci_low", got.CiLow, want.Low)
	c.eq(field+".ci_high", got.CiHigh, want.High)
	c.eq(field+".small_sample", got.SmallSample, want.Small)
}

func (c *comparer) latency(field string, got cardLatency, want Latency) {
	c.eq(field+".count", uint64(got.Count), uint64(want.Count))
	c.eq(field+".p50_ms", uint64(got.P50), want.P50)
	c.eq(field+".p90_ms", uint64(got.P90), want.P90)
	c.eq(field+".p99_ms", uint64(got.P99), want.P99)
	c.rate(field+".within_sla", got.WithinSLA, want.Within)
}

// entity compares an entity's figures: requests, every class's rate (every
// class the truth has must be on the card), suspect, latencies, refusals
// by code and the ranking.
func (c *comparer) entity(e cardEntity, f *Figures, p Params) {
	c.eq("requests", uint64(e.Requests), f.Requests)
	onCard := map[string]bool{}
	for _, o := range e.Outcomes {
		if o.Outcome == "orphan" { // over requests + orphans: no request of the truth
			continue
		}
		onCard[o.Outcome] = true
		c.rate(o.Outcome, o.Rate, f.ClassRate(o.Outcome, p))
	}
	for class := range f.Classes {
		if !onCard[class] {
			c.diffs = append(c.diffs, fmt.Sprintf("%s: class %s (%d requests) not on the card", c.at, class, f.Classes[class]))
		}
	}
	c.rate("suspect", e.Suspect, f.Suspect)
	c.latency("time_to_fulfil", e.TTF, f.TTF)
	if f.TTAKnown {
		c.latency("time_to_acknowledge", e.TTA, f.TTA)
	}
	c.eq("refusals", len(e.Refusals), len(f.Refusals))
	for i := range min(len(e.Refusals), len(f.Refusals)) {
		got, want := e.Refusals[i], f.Refusals[i]
		field := "refusal " + want.Outcome + " " + want.Code
		c.eq(field, got.Outcome+" "+got.Code, want.Outcome+" "+want.Code)
		c.rate(field, got.Rate, want.Share)
		c.eq(field+".peer_median", got.PeerMedian, want.PeerMedian)
		c.eq(field+".overuse", got.Overuse, want.Overuse)
	}
	var flags []string
	for _, fl := range e.Flags {
		flags = append(flags, strings.TrimSpace(fl.Kind+" "+fl.ExceptionCode))
	}
	c.eq("flags", flags, f.Flags)
	r, w := e.Ranking, f.Ranking
	c.eq("peer_median", r.PeerMedian, w.PeerMedian)
	c.eq("excess_events", r.Excess, w.Excess)
	c.eq("flagged", r.Flagged, w.Flagged)
	c.eq("flagged_periods", r.FlaggedPeriods, w.FlaggedPeriods)
	c.eq("consecutive", r.Consecutive, w.Consecutive)
	c.eq("repeat_offender", r.RepeatOffender, w.RepeatOffender)
	c.eq("priority", r.Priority, w.Priority)
	c.eq("rank", r.Rank, w.Rank)
	c.eq("ranked", r.Ranked, w.Ranked)
}

// trend compares the entity's last FlagN days, oldest first: requests,
// suspect rate (a day without requests: 0 of 0) and flagged.
func (c *comparer) trend(e cardEntity, k Key, ref map[Key]*Figures, p Params) {
	c.eq("trend length", len(e.Trend), p.FlagN)
	day, err := time.Parse(dayLayout, k.Period)
	if err != nil || len(e.Trend) != p.FlagN {
		return
	}
	for i, point := range e.Trend {
		back := k
		back.Period = day.AddDate(0, 0, i-p.FlagN+1).Format(dayLayout)
		field := "trend " + back.Period
		c.eq(field, point.Period, back.Period)
		f := ref[back]
		if f == nil {
			f = &Figures{Suspect: wilson(0, 0, p.MinSample)}
		}
		c.eq(field+".requests", uint64(point.Requests), f.Requests)
		c.rate(field+".suspect", point.Suspect, f.Suspect)
		c.eq(field+".flagged", point.Flagged, f.Ranking.Flagged)
	}
}
