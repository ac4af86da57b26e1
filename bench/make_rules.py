#!/usr/bin/env python3
"""Writes a rules file of N rules for the rules benchmark (bench/rules.sh).

Three rules match the benchmark's traffic and plan one outbox row each:
activations -> devices.custom_fields (once per event), device SMS ->
http.post, NIDD delivery reports -> sms.send (once per device). The other
N - 3 are realistic rules that are evaluated and do not match: the same
kinds with conditions on other plans, states and regexes, and other kinds.
    make_rules.py N [sync] > rules.yaml
With "sync", activations are followed by devices.list (a query ThingSpace
answers at once) instead of devices.custom_fields (which ThingSpace answers
with one more callback per device): the latency benchmark keeps its
callback rate.
"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
sync = len(sys.argv) > 2 and sys.argv[2] == "sync"
out = ["rules:"]
out += [
    "  - name: activated-fields",
    "    when: { kind: provisioning.activate, status: success, match: { state: active } }",
    "    do:",
] + ([
    "      - action: devices.list",
    '        with: { accountName: "{{ account }}", deviceId: "{{ device_ids.0 }}" }',
] if sync else [
    "      - action: devices.custom_fields",
    "        with:",
    '          accountName: "{{ account }}"',
    '          devices: "{{ devices }}"',
    '          customFieldsToUpdate: [{ key: CustomField1, value: "on {{ received_at }}" }]',
]) + [
    "  - name: device-sms-hook",
    "    when: { kind: sms.mo }",
    "    do:",
    "      - action: http.post",
    "        url: http://127.0.0.1:9/hooks/sms",
    '        with: { device: "{{ primary_device.id }}", text: "{{ payload.message }}" }',
    "  - name: nidd-ack-sms",
    "    when: { kind: nidd.delivery, status: delivered }",
    "    do:",
    "      - action: sms.send",
    '        with: { accountName: "{{ account }}", deviceIds: "{{ device_ids }}", smsMessage: ack }',
    '        once_per: "{{ primary_device.id }}"',
]
kinds = ["provisioning.activate", "provisioning.suspend", "usage.alert", "sms.mo",
         "nidd.delivery", "reachability.status", "provisioning.*"]
for i in range(n - 3):
    kind = kinds[i % len(kinds)]
    cond = [
        '{ servicePlan: { eq: "Plan-%d" } }' % i,
        '{ all: [{ state: { in: [suspended, deactive] } }, { ipAddress: { exists: true } }] }',
        '{ message: { regex: "^ALARM-%d" } }' % i,
        '{ any: [{ thresholdValue: { gte: %d } }, { not: { status: { ne: never } } }] }' % (1000 + i),
    ][i % 4]
    out += [
        "  - name: nomatch-%d" % i,
        "    when: { kind: \"%s\", match: %s }" % (kind, cond),
        "    do:",
        "      - action: devices.suspend",
        '        with: { accountName: "{{ account }}", devices: "{{ devices }}" }',
    ]
print("\n".join(out))
