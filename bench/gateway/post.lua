-- The POST of internal/gateway/waf's benchmarks (BenchmarkInspect
-- POST_1KB_JSON): an order of about 1 KB of JSON, with a browser's headers.
wrk.method = "POST"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
wrk.headers["Accept"] = "application/json"
wrk.headers["Accept-Language"] = "en-IE,en;q=0.9"
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
wrk.headers["Cookie"] = "session=sess_9f8e7d6c5b4a3928; theme=dark"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"customer":{"id":"c_8f2e41","name":"Seán O'Brien","email":"sean.obrien@example.ie","phone":"+353 1 555 0142"},"shipping":{"street":"12 Harbour Road","city":"Dún Laoghaire","postcode":"A96 X2Y3","country":"IE"},"billing":{"street":"12 Harbour Road","city":"Dún Laoghaire","postcode":"A96 X2Y3","country":"IE"},"items":[{"sku":"A-100","name":"Wireless headphones","qty":1,"price":129.99},{"sku":"B-7","name":"USB-C cable, 2 m","qty":2,"price":9.5},{"sku":"C-42","name":"Travel pouch, black","qty":1,"price":24},{"sku":"D-9","name":"Replacement ear cushions, medium","qty":1,"price":14.9},{"sku":"E-311","name":"Gift wrapping","qty":1,"price":3}],"coupon":"SPRING24","currency":"EUR","gift":true,"note":"Please leave the parcel with the neighbour at number 14 if nobody's home; the bell doesn't work. Thanks!","tags":["web","returning-customer","newsletter"],"created_at":"2024-05-01T12:30:00Z","consent":{"marketing":false,"terms":"2024-01"},"device":{"os":"Android 14","app":"shop/5.3.1","locale":"en-IE"}}]]
