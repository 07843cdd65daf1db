"""Oversight's models, moved from notifications (their owner is this layer): state only.
The tables keep their names (`db_table`), so not one row moves; notifications
0008_oversight_models_moved drops the old state and moves the content types."""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('notifications', '0007_approval_digest'),
        ('audit', '0011_pending_mac_quarantine'),
        ('keys', '0005_key_pepper_ids'),
        ('tenants', '0005_role_groups'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
        migrations.CreateModel(
            name='AuditExportDestination',
            fields=[
                ('workspace', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='audit_export', serialize=False, to='tenants.workspace')),
                ('kind', models.CharField(choices=[('directory', 'Directory (JSONL files)'), ('webhook', 'HTTPS webhook (signed JSONL batches)')], max_length=16)),
                ('directory', models.CharField(blank=True, help_text='Inside one of WARDEN_EXPORT_DIRECTORY_ROOTS.', max_length=500)),
                ('url', models.URLField(blank=True, max_length=500)),
                ('secret', models.CharField(blank=True, editable=False, max_length=128)),
                ('enabled', models.BooleanField(default=True)),
                ('batch_size', models.PositiveIntegerField(default=500)),
                ('last_exported_seq', models.PositiveBigIntegerField(default=0, editable=False)),
                ('last_success_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('last_attempt_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('last_error', models.CharField(blank=True, editable=False, max_length=500)),
                ('consecutive_failures', models.PositiveIntegerField(default=0, editable=False)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'verbose_name': 'audit export destination',
                'db_table': 'notifications_auditexportdestination',
            },
        ),
        migrations.CreateModel(
            name='AnomalyFinding',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('volume', 'Volume'), ('new_tool', 'New Tool'), ('new_level', 'New Level'), ('new_hour', 'New Hour')], max_length=16)),
                ('window_start', models.DateTimeField()),
                ('window_end', models.DateTimeField()),
                ('evidence', models.JSONField(default=dict)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('exception_record', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='audit.exceptionrecord')),
                ('key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='keys.machinekey')),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.workspace')),
            ],
            options={
                'db_table': 'notifications_anomalyfinding',
                'ordering': ['-window_start'],
                'constraints': [models.UniqueConstraint(fields=('key', 'kind', 'window_start'), name='one_finding_per_window')],
            },
        ),
        migrations.CreateModel(
            name='AuditExportBatch',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('kind', models.CharField(max_length=16)),
                ('first_seq', models.PositiveBigIntegerField()),
                ('last_seq', models.PositiveBigIntegerField()),
                ('entries', models.PositiveIntegerField()),
                ('sha256', models.CharField(max_length=64)),
                ('target', models.CharField(max_length=500)),
                ('sent_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.workspace')),
            ],
            options={
                'verbose_name_plural': 'audit export batches',
                'db_table': 'notifications_auditexportbatch',
                'ordering': ['workspace', 'first_seq'],
                'constraints': [models.UniqueConstraint(fields=('workspace', 'first_seq'), name='export_batch_once')],
            },
        ),
                ],
        ),
    ]
