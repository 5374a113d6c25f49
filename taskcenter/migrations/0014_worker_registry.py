"""The worker registry; what a waiting execution waits for; indexes for queue depth and lost
attempts. ``waiting_for`` is nullable so SQLite adds it in place (a rebuild of the execution
table would drop its tally triggers)."""

import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('taskcenter', '0013_tally_shards'),
    ]

    operations = [
        migrations.CreateModel(
            name='WorkerProcess',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(db_index=True, max_length=100, verbose_name='name')),
                ('host', models.CharField(max_length=255, verbose_name='host')),
                ('pid', models.PositiveIntegerField(verbose_name='pid')),
                ('engine', models.CharField(choices=[('database', 'database'), ('rq', 'RQ')], max_length=16, verbose_name='engine')),
                ('queues', models.JSONField(default=list, verbose_name='queues')),
                ('concurrency', models.PositiveIntegerField(default=1, verbose_name='concurrency')),
                ('busy', models.PositiveIntegerField(default=0, verbose_name='busy slots')),
                ('running_attempts', models.JSONField(blank=True, default=list, verbose_name='running attempts')),
                ('attempts_run', models.BigIntegerField(default=0, verbose_name='attempts run')),
                ('attempts_deferred', models.BigIntegerField(default=0, verbose_name='poll-again re-dispatches')),
                ('outcomes', models.JSONField(blank=True, default=dict, verbose_name='outcomes')),
                ('version', models.CharField(blank=True, max_length=40, verbose_name='version')),
                ('started_at', models.DateTimeField(verbose_name='started at')),
                ('last_seen_at', models.DateTimeField(verbose_name='last seen')),
                ('stopped_at', models.DateTimeField(blank=True, null=True, verbose_name='stopped at')),
            ],
            options={
                'verbose_name': 'worker',
                'verbose_name_plural': 'workers',
                'ordering': ['-started_at'],
            },
        ),
        migrations.AddField(
            model_name='taskexecution',
            name='waiting_for',
            field=models.CharField(blank=True, choices=[('platform', 'platform'), ('account', 'account')], max_length=16, null=True, verbose_name='waiting for'),
        ),
        migrations.AddIndex(
            model_name='task',
            index=models.Index(condition=models.Q(('status', 'QUEUED')), fields=['task_type', 'platform', 'account_id', 'updated_at', 'run_after'], name='task_queued_depth_idx'),
        ),
        migrations.AddIndex(
            model_name='taskexecution',
            index=models.Index(condition=models.Q(('status', 'LOST')), fields=['worker_id', 'started_at'], name='exec_lost_worker_idx'),
        ),
        migrations.AddIndex(
            model_name='workerprocess',
            index=models.Index(fields=['stopped_at', 'last_seen_at'], name='worker_stopped_seen_idx'),
        ),
        migrations.AddIndex(
            model_name='workerprocess',
            index=models.Index(fields=['-started_at'], name='worker_started_idx'),
        ),
    ]
