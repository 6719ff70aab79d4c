-- wrk script for the web enqueue tail: each request POSTs a unique sign-up to the demo.
-- wrk -t2 -c32 -d10s --latency -s toosimple-bench/signup.lua http://127.0.0.1:8000
local counter = 0
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end
function request()
  counter = counter + 1
  local body = "email=u" .. tid .. "x" .. counter .. "%40example.com&name=U"
  return wrk.format("POST", "/signup", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
