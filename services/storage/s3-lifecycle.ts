import { type LifecycleRule, PutBucketLifecycleConfigurationCommand, type S3Client } from "@aws-sdk/client-s3";

export interface LifecycleDays {
  readonly mediaArchiveDays: number;
  readonly uploadExpireDays: number;
  /** Storage class for archived media; empty skips the transition. */
  readonly archiveStorageClass: string;
}

/**
 * The bucket's lifecycle rules for our key layout (S3 counts in whole days). Objects under `media/` and
 * `temp/` never expire by rule: a run or cache entry may hold one past its own retention, so only the
 * service, which knows the holds, deletes them (docs/garbage-collection.md).
 */
export function lifecycleRules(days: LifecycleDays, withTransition: boolean): LifecycleRule[] {
  const archive: LifecycleRule[] =
    withTransition && days.archiveStorageClass
      ? [
          {
            ID: "mentatlab-media",
            Status: "Enabled",
            Filter: { Prefix: "media/" },
            Transitions: [{ Days: days.mediaArchiveDays, StorageClass: days.archiveStorageClass as never }],
          },
        ]
      : [];
  return [
    ...archive,
    {
      ID: "mentatlab-uploads",
      Status: "Enabled",
      Filter: { Prefix: "uploads/" },
      Expiration: { Days: days.uploadExpireDays },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    },
  ];
}

/** What start-up managed to apply. */
export type LifecycleOutcome = "applied" | "applied-without-archive" | "unsupported";

/**
 * Puts lifecycle rules on the bucket. Servers without a configured archive tier (e.g. MinIO without
 * tiering) refuse the transition: retry without it. Servers without lifecycle support at all leave
 * expiry to the service's own sweeper, which runs on every backend anyway.
 */
export async function applyLifecycle(client: S3Client, bucket: string, days: LifecycleDays): Promise<LifecycleOutcome> {
  const put = (withTransition: boolean) =>
    client.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: { Rules: lifecycleRules(days, withTransition) },
      }),
    );
  try {
    await put(true);
    return days.archiveStorageClass ? "applied" : "applied-without-archive";
  } catch {
    try {
      await put(false);
      return "applied-without-archive";
    } catch {
      return "unsupported";
    }
  }
}
