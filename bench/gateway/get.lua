-- The GET of internal/gateway/waf's benchmarks (BenchmarkInspect
-- GET_4_params): the four query parameters are in the URL run.sh gives wrk,
-- the headers are a browser's.
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
wrk.headers["Accept"] = "application/json"
wrk.headers["Accept-Language"] = "en-IE,en;q=0.9"
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
wrk.headers["Cookie"] = "session=sess_9f8e7d6c5b4a3928; theme=dark"
