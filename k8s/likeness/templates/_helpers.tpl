{{/*
Names. Kubernetes names are limited to 63 characters.
*/}}
{{- define "likeness.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "likeness.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of one service's objects: (dict "root" $ "svc" "faces") */}}
{{- define "likeness.svcName" -}}
{{- printf "%s-%s" (include "likeness.fullname" .root) .svc | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "likeness.chartLabel" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "likeness.labels" -}}
helm.sh/chart: {{ include "likeness.chartLabel" . }}
app.kubernetes.io/name: {{ include "likeness.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: likeness
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "svc" "faces") */}}
{{- define "likeness.selectorLabels" -}}
app.kubernetes.io/name: {{ include "likeness.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .svc }}
{{- end }}

{{- define "likeness.componentLabels" -}}
{{ include "likeness.labels" .root }}
app.kubernetes.io/component: {{ .svc }}
{{- end }}

{{- define "likeness.secretName" -}}
{{- include "likeness.fullname" . }}
{{- end }}

{{/*
Fully qualified gRPC target of a service: (dict "root" $ "svc" "privacy").
`dns:///` plus a headless Service gives clients every pod address, so a round_robin
channel spreads calls over the replicas instead of pinning one connection to one pod.
*/}}
{{- define "likeness.grpcTarget" -}}
{{- $port := (index .root.Values.services .svc).grpcPort -}}
{{- printf "dns:///%s.%s.svc.%s:%d" (include "likeness.svcName" .) .root.Release.Namespace .root.Values.clusterDomain (int $port) }}
{{- end }}

{{/*
A service's image: (dict "root" $ "svc" "faces"). With image.digests.<svc> (what
`make images` prints; the registry's digest after a push) the reference is pinned:
repository:tag@sha256:..., so a re-pushed tag cannot change what runs.
*/}}
{{- define "likeness.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag -}}
{{- $ref := printf "likeness-%s:%s" .svc $tag -}}
{{- if .root.Values.image.registry -}}
{{- $ref = printf "%s/%s" (trimSuffix "/" .root.Values.image.registry) $ref -}}
{{- end -}}
{{- with dig .svc "" (default dict .root.Values.image.digests) -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end }}

{{/* The in-cluster PostgreSQL's image, pinned by postgresql.image.digest when set. */}}
{{- define "likeness.postgresqlImage" -}}
{{- $image := .Values.postgresql.image -}}
{{- printf "%s:%s" $image.repository (toString $image.tag) -}}
{{- with $image.digest -}}@{{ . }}{{- end -}}
{{- end }}

{{/*
Where each secret value comes from: a user's existing Secret or the chart's own.
Each returns "secretName/key".
*/}}
{{/*
One service's runtime database URL as "secretName/key": (dict "root" $ "svc" "privacy").
Each service with a schema logs in as its own runtime role (database.urls.<svc>, or the key
database.existingSecretServiceKeys.<svc> of an existing Secret); database.url (or
existingSecretKey) is the shared fallback of a single-role database.
*/}}
{{- define "likeness.ref.databaseUrl" -}}
{{- $db := .root.Values.database -}}
{{- if $db.existingSecret -}}
{{ $db.existingSecret }}/{{ dig .svc "" (default dict $db.existingSecretServiceKeys) | default $db.existingSecretKey }}
{{- else if dig .svc "" (default dict $db.urls) -}}
{{ include "likeness.secretName" .root }}/database-url-{{ .svc }}
{{- else if or $db.url .root.Values.postgresql.enabled -}}
{{ include "likeness.secretName" .root }}/database-url
{{- else -}}
{{ fail (printf "likeness: no database URL for %s: set database.urls.%s (its runtime role), database.url, database.existingSecret or postgresql.enabled" .svc .svc) }}
{{- end -}}
{{- end }}

{{- define "likeness.ref.privacy" -}}
{{- if .Values.privacyKeys.existingSecret -}}
{{ .Values.privacyKeys.existingSecret }}
{{- else -}}
{{- $_ := required "likeness: privacyKeys.kek (base64 of 32 random bytes) or privacyKeys.existingSecret is required" .Values.privacyKeys.kek -}}
{{- if ne (len (b64dec .Values.privacyKeys.kek)) 32 -}}
{{ fail "likeness: privacyKeys.kek must be base64 of exactly 32 bytes" }}
{{- end -}}
{{- /* Keys derived from the KEK would change when it rotates: pseudonyms and checkpoint signatures with them. */ -}}
{{- $_ := required "likeness: privacyKeys.pseudonymKey (base64 of 32 random bytes) is required: a key derived from the KEK would change when the KEK rotates" .Values.privacyKeys.pseudonymKey -}}
{{- if lt (len (b64dec .Values.privacyKeys.pseudonymKey)) 32 -}}
{{ fail "likeness: privacyKeys.pseudonymKey must be base64 of at least 32 bytes" }}
{{- end -}}
{{- $_ := required "likeness: privacyKeys.ledgerSigningKey (base64 of a 32-byte Ed25519 seed) is required: checkpoints signed under a key derived from the KEK would stop verifying when it rotates" .Values.privacyKeys.ledgerSigningKey -}}
{{- if ne (len (b64dec .Values.privacyKeys.ledgerSigningKey)) 32 -}}
{{ fail "likeness: privacyKeys.ledgerSigningKey must be base64 of exactly 32 bytes" }}
{{- end -}}
{{ include "likeness.secretName" . }}
{{- end -}}
{{- end }}

{{- define "likeness.ref.billing" -}}
{{- if .Values.billingKeys.existingSecret -}}
{{ .Values.billingKeys.existingSecret }}
{{- else -}}
{{- $_ := required "likeness: billingKeys.ledgerKey (base64 of at least 32 random bytes) or billingKeys.existingSecret is required" .Values.billingKeys.ledgerKey -}}
{{- if lt (len (b64dec .Values.billingKeys.ledgerKey)) 32 -}}
{{ fail "likeness: billingKeys.ledgerKey must be base64 of at least 32 bytes" }}
{{- end -}}
{{ include "likeness.secretName" . }}
{{- end -}}
{{- end }}

{{- define "likeness.ref.blobNameKey" -}}
{{- if .Values.blobs.nameKeyExistingSecret -}}
{{ .Values.blobs.nameKeyExistingSecret }}
{{- else -}}
{{- $_ := required "likeness: blobs.nameKey (base64 of at least 32 random bytes) or blobs.nameKeyExistingSecret is required" .Values.blobs.nameKey -}}
{{- if lt (len (b64dec .Values.blobs.nameKey)) 32 -}}
{{ fail "likeness: blobs.nameKey must be base64 of at least 32 bytes" }}
{{- end -}}
{{ include "likeness.secretName" . }}
{{- end -}}
{{- end }}

{{- define "likeness.ref.appStore" -}}
{{- if .Values.appStore.existingSecret -}}
{{ .Values.appStore.existingSecret }}
{{- else if .Values.appStore.keyId -}}
{{ include "likeness.secretName" . }}
{{- end -}}
{{- end }}

{{- define "likeness.ref.s3" -}}
{{- if .Values.blobs.s3.existingSecret -}}
{{ .Values.blobs.s3.existingSecret }}
{{- else if .Values.blobs.s3.accessKeyId -}}
{{ include "likeness.secretName" . }}
{{- end -}}
{{- end }}

{{- define "likeness.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}

{{/* Database URL of the in-cluster PostgreSQL. */}}
{{- define "likeness.postgresqlUrl" -}}
{{- $pg := .Values.postgresql -}}
{{- /* The schema limits user and password to URL-safe characters, so no escaping. */ -}}
{{- printf "postgresql://%s:%s@%s-postgresql.%s.svc.%s:5432/%s" $pg.auth.username (required "likeness: postgresql.auth.password is required when postgresql.enabled" $pg.auth.password) (include "likeness.fullname" .) .Release.Namespace .Values.clusterDomain $pg.auth.database }}
{{- end }}

{{/*
The Secret with one service's certificate (tls.crt, tls.key, ca.crt): (dict "root" $ "svc" "faces").
TLS is not optional, so a service without a source for it fails the render.
*/}}
{{- define "likeness.tlsSecret" -}}
{{- $cfg := index .root.Values.services .svc -}}
{{- $existing := dig "tls" "existingSecret" "" $cfg -}}
{{- if $existing -}}
{{ $existing }}
{{- else if .root.Values.tls.certManager.enabled -}}
{{ include "likeness.svcName" . }}-tls
{{- else -}}
{{ fail (printf "likeness: services.%s.tls.existingSecret is required (a Secret with tls.crt, tls.key and ca.crt), or set tls.certManager.enabled" .svc) }}
{{- end -}}
{{- end }}

{{/* The migration (owner role) URL as "secretName/key", or "" for a single-role database. */}}
{{- define "likeness.ref.migrationUrl" -}}
{{- if .Values.database.existingSecret -}}
{{- with .Values.database.existingSecretMigrationKey -}}
{{ $.Values.database.existingSecret }}/{{ . }}
{{- end -}}
{{- else if .Values.database.migrationUrl -}}
{{ include "likeness.secretName" . }}/migration-database-url
{{- end -}}
{{- end }}

{{/* A NetworkPolicy egress rule to configured peers: (dict "what" "networkPolicy.egress.otlp" "dest" $dest) */}}
{{- define "likeness.egressRule" -}}
{{- if not .dest.to }}
{{- fail (printf "likeness: %s.to is required (the peers this traffic may reach; egress is denied by default)" .what) }}
{{- end }}
- to:
    {{- toYaml .dest.to | nindent 4 }}
  ports:
    {{- range .dest.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}

{{/* "true" when privacy pushes notices through APNs: all of rights.apns keyId, teamId, topic and
existingSecret are set; some but not all fails the render. */}}
{{- define "likeness.apnsOn" -}}
{{- $a := .Values.rights.apns -}}
{{- $given := list $a.keyId $a.teamId $a.topic $a.existingSecret | compact -}}
{{- if eq (len $given) 4 -}}
true
{{- else if $given -}}
{{- fail "likeness: rights.apns needs keyId, teamId, topic and existingSecret together (or none of them: no push)" -}}
{{- end -}}
{{- end }}

{{/* "true" when privacy texts incident notices: all of rights.sms baseUrl, accountId, from and
existingSecret are set; some but not all fails the render. */}}
{{- define "likeness.smsOn" -}}
{{- $s := .Values.rights.sms -}}
{{- $given := list $s.baseUrl $s.accountId (index $s "from") $s.existingSecret | compact -}}
{{- if eq (len $given) 4 -}}
true
{{- else if $given -}}
{{- fail "likeness: rights.sms needs baseUrl, accountId, from and existingSecret together (or none of them: no SMS)" -}}
{{- end -}}
{{- end }}

{{/*
The database URLs the chart keeps in its own Secret (none with database.existingSecret), as
YAML: key -> value. secret.yaml stores them; the migrations Job gets a copy of its own.
*/}}
{{- define "likeness.databaseSecretData" -}}
{{- $data := dict -}}
{{- if not .Values.database.existingSecret -}}
{{- if .Values.database.url -}}
{{- $_ := set $data "database-url" .Values.database.url -}}
{{- else if .Values.postgresql.enabled -}}
{{- $_ := set $data "database-url" (include "likeness.postgresqlUrl" .) -}}
{{- end -}}
{{- range $svc, $url := .Values.database.urls -}}
{{- if $url -}}
{{- $_ := set $data (printf "database-url-%s" $svc) $url -}}
{{- end -}}
{{- end -}}
{{- with .Values.database.migrationUrl -}}
{{- $_ := set $data "migration-database-url" . -}}
{{- end -}}
{{- end -}}
{{- toYaml $data -}}
{{- end }}
