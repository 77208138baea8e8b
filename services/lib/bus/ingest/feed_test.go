package ingest

import "testing"

func TestFeedOfAddr(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"10.1.2.3:40211", "mllp:10.1.2.3"},
		{"[::1]:6514", "mllp:::1"},
		{"not-an-address", "mllp:not-an-address"},
	} {
		if got := FeedOfAddr(ChannelMLLP, tc.addr); got != tc.want {
			t.Errorf("FeedOfAddr(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
