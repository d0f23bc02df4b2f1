// WorkManager runs this every 15 minutes (the platform's minimum) while the
// app is not on screen: the logic module's BackgroundWork syncs, purges and
// escalates for the open profile, so expiry and receipts happen with the app
// closed.
package org.occ.android

import android.content.Context
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit
import org.occ.app.BackgroundWork
import org.occ.app.WorkResult

class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val app = applicationContext as OccApp
        return when (BackgroundWork(app.device).run()) {
            WorkResult.SUCCESS, WorkResult.NOTHING_OPEN -> Result.success()
            WorkResult.RETRY -> Result.retry()
        }
    }

    companion object {
        fun schedule(context: Context) {
            WorkManager.getInstance(context).enqueueUniquePeriodicWork(
                "occ-sync",
                ExistingPeriodicWorkPolicy.KEEP,
                PeriodicWorkRequestBuilder<SyncWorker>(15, TimeUnit.MINUTES).build(),
            )
        }
    }
}
