{{/* Names */}}
{{- define "curio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "curio.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "curio.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "curio.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "curio.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "curio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: curio
{{- end -}}

{{- define "curio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "curio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "curio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "curio.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "curio.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "curio.webhookService" -}}{{ include "curio.fullname" . }}-webhook{{- end -}}
{{- define "curio.webhookSecret" -}}{{ default (printf "%s-webhook-tls" (include "curio.fullname" .)) .Values.webhook.certificates.secretName }}{{- end -}}

{{/* The Secret and key holding the database URL: the chart's own when database.url is set,
else database.existingSecret. */}}
{{- define "curio.databaseSecretName" -}}
{{- if .Values.database.url -}}
{{ include "curio.fullname" . }}-database
{{- else -}}
{{ .Values.database.existingSecret.name }}
{{- end -}}
{{- end -}}
{{- define "curio.databaseSecretKey" -}}
{{- if .Values.database.url -}}url{{- else -}}{{ .Values.database.existingSecret.key }}{{- end -}}
{{- end -}}

{{- define "curio.checkDatabase" -}}
{{- if and (not .Values.database.existingSecret.name) (not .Values.database.url) -}}
{{- fail "set database.existingSecret.name (a Secret with the PostgreSQL URL) or database.url" -}}
{{- end -}}
{{- end -}}

{{/* Restricted pod security for every container. */}}
{{- define "curio.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "curio.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "curio.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "curio.databaseSecretName" . }}
      key: {{ include "curio.databaseSecretKey" . }}
{{- end -}}
