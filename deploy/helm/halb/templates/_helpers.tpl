{{/*
Labels every object carries: deploy/base's (kustomize `labels`) and Helm's own.
*/}}
{{- define "halb.labels" -}}
app.kubernetes.io/name: halb
app.kubernetes.io/part-of: halb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
The operator's pods; also the Deployment's selector, which cannot change after install, so it
carries no release or version label.
*/}}
{{- define "halb.operatorSelector" -}}
app.kubernetes.io/name: halb
app.kubernetes.io/component: operator
{{- end -}}

{{- define "halb.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The labels the Prometheus Operator objects carry: the chart's plus metrics.labels. */}}
{{- define "halb.monitoringLabels" -}}
{{ include "halb.labels" . }}
{{- with .Values.metrics.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
