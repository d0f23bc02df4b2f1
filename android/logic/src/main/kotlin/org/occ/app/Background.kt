// Work the platform runs while the app is not on screen (Android
// WorkManager, iOS background refresh): for the open profile, deliver what is
// queued, drain the inbox, purge what passed its deadline and escalate
// unacknowledged alerts, so expiry and receipts happen with the app closed.
// A locked profile cannot be read or purged without its user; the core
// withholds anything past its deadline at read time anyway, and purges it at
// the next unlock.
package org.occ.app

import org.occ.OccException

/** How one background run went (WorkManager's success / retry). */
enum class WorkResult { SUCCESS, RETRY, NOTHING_OPEN }

/** One background run over the open profile of [profiles]. */
class BackgroundWork(private val profiles: DeviceProfiles) {
    suspend fun run(): WorkResult {
        val client = profiles.current.value?.client ?: return WorkResult.NOTHING_OPEN
        return try {
            val report = client.sync()
            client.purge()
            client.checkAlerts()
            if (report.sendError == null) WorkResult.SUCCESS else WorkResult.RETRY
        } catch (e: OccException.Closed) {
            WorkResult.NOTHING_OPEN
        } catch (e: OccException.Network) {
            WorkResult.RETRY
        }
    }
}
