-- wrk script: POST /v1/sessions/bench-N/runs into one of 100 sessions.
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"content":"benchmark input"}'
request = function()
    return wrk.format(nil, "/v1/sessions/bench-" .. math.random(1, 100) .. "/runs")
end
