{{/* The release's name prefix: the release name, or <release>-auditlog when it lacks "auditlog". */}}
{{- define "auditlog.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "auditlog.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: auditlog
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "auditlog.labels" -}}
{{ include "auditlog.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A component's labels: the common ones and its selector (dict "root" . "component" NAME). */}}
{{- define "auditlog.componentLabels" -}}
{{ include "auditlog.commonLabels" .root }}
{{ include "auditlog.selector" . }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The pod selector of one component (api, ingester, migrate): stable across chart versions. */}}
{{- define "auditlog.selector" -}}
app.kubernetes.io/name: {{ include "auditlog.fullname" .root }}-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "auditlog.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "auditlog.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "auditlog.fullname" .)) -}}
{{- end -}}

{{/* The ClickHouse password from the Secret, for every auditlog container. */}}
{{- define "auditlog.passwordEnv" -}}
- name: AUDITLOG_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "auditlog.secretName" . }}
      key: clickhouse-password
{{- end -}}

{{/* auditlog.toml without secrets, shared by every pod. auditlog rejects unknown keys. */}}
{{- define "auditlog.config" -}}
[kafka]
brokers = {{ .Values.kafka.brokers | toJson }}
topic = {{ .Values.kafka.topic | toJson }}
dlq_topic = {{ .Values.kafka.dlqTopic | toJson }}
group = {{ .Values.kafka.group | toJson }}
partitions = {{ int .Values.kafka.partitions }}
dlq_partitions = {{ int .Values.kafka.dlqPartitions }}
{{- with .Values.kafka.replicationFactor }}
replication_factor = {{ int . }}
{{- end }}
{{- with .Values.kafka.topicConfig }}

[kafka.topic_config]
{{- range $key, $value := . }}
{{ $key | toJson }} = {{ $value | toString | toJson }}
{{- end }}
{{- end }}
{{- with .Values.kafka.properties }}

[kafka.properties]
{{- range $key, $value := . }}
{{ $key | toJson }} = {{ $value | toString | toJson }}
{{- end }}
{{- end }}

[clickhouse]
url = {{ .Values.clickhouse.url | toJson }}
database = {{ .Values.clickhouse.database | toJson }}
table = {{ .Values.clickhouse.table | toJson }}
user = {{ .Values.clickhouse.user | toJson }}
{{- with .Values.clickhouse.cluster }}
cluster = {{ . | toJson }}
{{- end }}

[ingest]
batch_rows = {{ int .Values.ingester.batchRows }}
batch_max_age_ms = {{ int .Values.ingester.batchMaxAgeMs }}
max_in_flight_batches = {{ int .Values.ingester.maxInFlightBatches }}
shutdown_timeout_secs = {{ int .Values.ingester.shutdownTimeoutSecs }}
revoke_timeout_secs = {{ int .Values.ingester.revokeTimeoutSecs }}

[api]
query_timeout_secs = {{ int .Values.api.queryTimeoutSecs }}

[retention]
days = {{ int .Values.retentionDays }}

[log]
filter = {{ .Values.log.filter | toJson }}
format = {{ .Values.log.format | toJson }}
{{- end -}}

{{/* The API's tokens as TOML, appended to auditlog.toml by the API pod's init container. */}}
{{- define "auditlog.tokens" -}}
{{- range .Values.api.tokens }}
[[api.tokens]]
name = {{ required "api.tokens[].name is required" .name | toJson }}
sha256 = {{ required "api.tokens[].sha256 is required" .sha256 | toJson }}
role = {{ required "api.tokens[].role is required" .role | toJson }}
{{- with .organizations }}
organizations = {{ . | toJson }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Refuses values that could only fail in the cluster. */}}
{{- define "auditlog.validate" -}}
{{- if le (int .Values.ingester.terminationGracePeriodSeconds) (int .Values.ingester.shutdownTimeoutSecs) -}}
{{- fail "ingester.terminationGracePeriodSeconds must exceed ingester.shutdownTimeoutSecs, or the kubelet kills an ingester mid-flush" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas exceeds autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) (int .Values.kafka.partitions)) -}}
{{- fail "autoscaling.maxReplicas exceeds kafka.partitions: the extra ingesters would own no partition" -}}
{{- end -}}
{{- if not (has .Values.autoscaling.mode (list "hpa" "keda")) -}}
{{- fail "autoscaling.mode is hpa or keda" -}}
{{- end -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.api.tokens) -}}
{{- fail "api.tokens is empty: the API refuses to listen off loopback without a token" -}}
{{- end -}}
{{- end -}}
