// The Go peer of benches/push.rs: client_golang (github.com/prometheus/client_golang)
// registers N counter series bench_series_total{series="<i>"}, the series the Rust jobs
// record, and pushes them once to the Pushgateway at PUSHGATEWAY_URL with
// push.New(url, job).Gatherer(reg).Push() (PUT, client_golang's default protobuf body),
// then exits.
//
//	push_counters [-no-push] [job]
//
// N comes from TEST_SERIES (default 1000), as for the Rust test jobs; the job works (sleeps)
// TEST_WORK_MS milliseconds after recording, when set. With -no-push (or
// TEST_NO_PUSH set) the job records the same series and exits without pushing: the bench
// takes the difference of the two.
//
// Built by the bench in GOPATH mode against Debian's golang-github-prometheus-client-golang-dev
// (GOPATH=/usr/share/gocode GO111MODULE=off), offline.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

func main() {
	noPush := flag.Bool("no-push", os.Getenv("TEST_NO_PUSH") != "", "record the series, do not push them")
	flag.Parse()
	job := "bench_go"
	if flag.NArg() > 0 {
		job = flag.Arg(0)
	}
	n := 1000
	if v := os.Getenv("TEST_SERIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			fmt.Fprintf(os.Stderr, "TEST_SERIES=%q: %v\n", v, err)
			os.Exit(2)
		}
	}

	reg := prometheus.NewRegistry()
	counters := prometheus.NewCounterVec(
		prometheus.CounterOpts{Name: "bench_series_total", Help: "bench series"},
		[]string{"series"},
	)
	reg.MustRegister(counters)
	for i := 0; i < n; i++ {
		counters.WithLabelValues(strconv.Itoa(i)).Inc()
	}
	if v := os.Getenv("TEST_WORK_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "TEST_WORK_MS=%q: %v\n", v, err)
			os.Exit(2)
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	if *noPush {
		return
	}

	url := os.Getenv("PUSHGATEWAY_URL")
	if url == "" {
		fmt.Fprintln(os.Stderr, "PUSHGATEWAY_URL is not set")
		os.Exit(2)
	}
	if err := push.New(url, job).Gatherer(reg).Push(); err != nil {
		fmt.Fprintf(os.Stderr, "push: %v\n", err)
		os.Exit(1)
	}
}
