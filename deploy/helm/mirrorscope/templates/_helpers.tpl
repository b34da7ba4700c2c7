{{- define "mirrorscope.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mirrorscope.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mirrorscope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mirrorscope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mirrorscope.labels" -}}
{{ include "mirrorscope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mirrorscope.tokenSecret" -}}
{{- .Values.token.existingSecret | default (printf "%s-token" (include "mirrorscope.fullname" .)) -}}
{{- end -}}

{{- define "mirrorscope.tlsSecret" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "mirrorscope.fullname" .)) -}}
{{- end -}}

{{- define "mirrorscope.scheme" -}}
{{- if or .Values.rbacProxy.enabled .Values.tls.enabled -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{/* The service's own listener serves HTTPS: TLS on, kube-rbac-proxy off. */}}
{{- define "mirrorscope.listenerTls" -}}
{{- if and .Values.tls.enabled (not .Values.rbacProxy.enabled) -}}true{{- end -}}
{{- end -}}
