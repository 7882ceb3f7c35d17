#!/usr/bin/env python3
"""Writes client-registry.json, the Grafana dashboard of the registry's metrics: edit the panels
here, run it, commit both. tests/api/metrics.rs checks every metric name used exists."""
import json, os
Q='"'
def sel(extra=''):
    inner='job=~"$job", instance=~"$instance"'
    return '{'+inner+(', '+extra if extra else '')+'}'
S5=sel('status="5xx"'); SAB=sel('status="abandoned"'); SREJ=sel('outcome="rejected"'); SALL=sel()
panels=[]
def panel(title, exprs, unit='short', kind='timeseries', w=12, h=8):
    targets=[{"expr":e,"legendFormat":l,"refId":chr(65+i),"datasource":{"type":"prometheus","uid":"${datasource}"}} for i,(e,l) in enumerate(exprs)]
    panels.append({"type":kind,"title":title,"datasource":{"type":"prometheus","uid":"${datasource}"},
                   "fieldConfig":{"defaults":{"unit":unit},"overrides":[]},"options":{},"targets":targets,"w":w,"h":h})
def row(title):
    panels.append({"type":"row","title":title,"collapsed":False,"panels":[],"w":24,"h":1})
row("HTTP")
panel("Requests per second by route",[('sum by (route) (rate(registry_http_requests_total'+SALL+'[5m]))',"{{route}}")],"reqps")
panel("Server errors (5xx) ratio",[('sum(rate(registry_http_requests_total'+S5+'[5m])) / sum(rate(registry_http_requests_total'+SALL+'[5m]))',"5xx ratio")],"percentunit")
panel("p99 latency by route",[('histogram_quantile(0.99, sum by (le, route) (rate(registry_http_request_duration_seconds_bucket'+SALL+'[5m])))',"{{route}}")],"s")
panel("In flight, and abandoned by clients",[('sum(registry_http_requests_in_flight'+SALL+')',"in flight"),('sum(rate(registry_http_requests_total'+SAB+'[5m]))',"abandoned / s")])
row("Commands and secrets")
panel("Commands by outcome",[('sum by (command, outcome) (rate(registry_commands_total'+SALL+'[5m]))',"{{command}} {{outcome}}")],"ops")
panel("Rejections by code",[('sum by (code) (rate(registry_commands_total'+SREJ+'[5m]))',"{{code}}")],"ops")
panel("Secret verifications by outcome",[('sum by (outcome) (rate(registry_secret_verifications_total'+SALL+'[5m]))',"{{outcome}}")],"ops")
panel("Secrets issued",[('sum(rate(registry_secrets_issued_total'+SALL+'[5m]))',"issued / s")],"ops")
panel("Hashing queue",[('max(registry_hashing_queue_depth'+SALL+')',"queue depth"),('histogram_quantile(0.99, sum by (le) (rate(registry_hashing_wait_seconds_bucket'+SALL+'[5m])))',"p99 wait (s)"),('sum(rate(registry_hashing_jobs_skipped_total'+SALL+'[5m]))',"skipped / s")])
panel("Exports",[('sum(registry_exports_running'+SALL+')',"running"),('histogram_quantile(0.95, sum by (le, format) (rate(registry_export_duration_seconds_bucket'+SALL+'[15m])))',"p95 {{format}} (s)")])
row("Database and read models")
panel("Database pool",[('sum by (state) (registry_db_pool_connections'+SALL+')',"{{state}}"),('max(registry_db_pool_max_connections'+SALL+')',"max"),('sum(rate(registry_db_pool_acquire_timeouts_total'+SALL+'[5m]))',"acquire timeouts / s")])
panel("Read model lag behind the feed head",[('max(registry_projector_lag_events'+SALL+')',"client tables (projector)"),('max by (instance) (registry_search_index_lag_positions'+SALL+')',"search index {{instance}}")])
panel("Feed positions",[('max(registry_feed_head_position'+SALL+')',"feed head"),('max(registry_projector_checkpoint_position'+SALL+')',"projector checkpoint"),('min(registry_search_index_position'+SALL+')',"slowest search index")])
panel("Parked events and projection failures",[('max(registry_projection_parked_events'+SALL+')',"parked"),('sum(rate(registry_projection_failures_total'+SALL+'[5m]))',"failures / s"),('sum(rate(registry_projector_events_total'+SALL+'[5m]))',"projected / s")])
row("Process")
panel("Background tasks",[('min by (task) (registry_background_task_up'+SALL+')',"{{task}} up"),('sum by (task) (increase(registry_background_task_restarts_total'+SALL+'[1h]))',"{{task}} restarts / h")])
panel("Projector leader, uptime",[('max by (instance) (registry_projector_leader'+SALL+')',"leader {{instance}}"),('time() - max by (instance) (process_start_time_seconds'+SALL+')',"uptime {{instance}} (s)")])
panel("Build",[('max by (instance, version, backend) (registry_build_info'+SALL+')',"{{instance}} {{version}} {{backend}}")],kind="table",w=24,h=5)
x=y=0; out=[]; pid=1; rowh=0
for p in panels:
    w,h=p.pop("w"),p.pop("h")
    if p["type"]=="row":
        if x!=0: y+=rowh; x=0
        p["gridPos"]={"h":1,"w":24,"x":0,"y":y}; y+=1; rowh=0
    else:
        if x+w>24: x=0; y+=rowh; rowh=0
        p["gridPos"]={"h":h,"w":w,"x":x,"y":y}; x+=w; rowh=max(rowh,h)
    p["id"]=pid; pid+=1; out.append(p)
dash={"title":"client-registry","uid":"client-registry","tags":["client-registry","oauth"],"timezone":"utc","schemaVersion":39,"version":1,
 "refresh":"30s","time":{"from":"now-6h","to":"now"},
 "description":"Made from the metric names the registry exports at /metrics; tests/api/metrics.rs checks that every name used here exists.",
 "templating":{"list":[
   {"name":"datasource","type":"datasource","query":"prometheus","label":"Prometheus"},
   {"name":"job","type":"query","datasource":{"type":"prometheus","uid":"${datasource}"},"query":"label_values(registry_build_info, job)","includeAll":True,"multi":True,"current":{"text":"All","value":"$__all"},"allValue":".*","refresh":2},
   {"name":"instance","type":"query","datasource":{"type":"prometheus","uid":"${datasource}"},"query":"label_values(registry_build_info{job=~\"$job\"}, instance)","includeAll":True,"multi":True,"current":{"text":"All","value":"$__all"},"allValue":".*","refresh":2}]},
 "annotations":{"list":[]},"panels":out}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'client-registry.json'), 'w') as f:
    json.dump(dash,f,indent=2); f.write('\n')
